"""What every token-issuing grant shares: resource selection, scope narrowing, issuance, audit."""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from authlib.oauth2.rfc6749.errors import InvalidScopeError, OAuth2Error

from authz.context import Context
from authz.identity.clients import OAuthClient
from authz.identity.console_roles import role_scopes
from authz.identity.directory import ResourceInfo
from authz.identity.revocations import revoke_grant
from authz.oauth import rfc8707
from authz.oauth.dpop import DpopProofError
from authz.oauth.errors import InvalidTargetError, TemporarilyUnavailableError
from authz.oauth.requests import AuthzRequest
from authz.oauth.tokens import TokenRequest
from authz.oauth.trust import TrustedIssuers
from authz.policy.engine import Subject, client_subject, describe_principal, refusal_reasons

log = logging.getLogger("authz.policy")


class BudgetExhaustedError(OAuth2Error):  # type: ignore[misc]
    """A hard budget of the agent, its team or the workflow is spent for the current period.

    RFC 6749 §5.2 has no budget code; ``access_denied`` (RFC 6749 §4.1.2.1 "the resource owner or
    authorization server denied the request", also a token-endpoint error in RFC 8628 §3.5 and
    OpenID CIBA) says "the server refuses, retrying the same request now will not help", which is
    what an exhausted budget means. ``invalid_grant``/``invalid_client`` would wrongly blame the
    credentials. ``Retry-After`` (RFC 9110 §10.2.3) carries the seconds until the period ends.
    """

    error = "access_denied"
    status_code = 400

    def __init__(self, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers = [*super().get_headers(), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


class GrantServer(Protocol):
    """What grants need of the Authlib server that runs them (:class:`authz.oauth.server.AuthzServer`):
    a Protocol, so the grants never import the server that registers them."""

    ctx: Context
    trust: TrustedIssuers


TOKEN_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def wanted_scopes(client: OAuthClient, info: ResourceInfo | None, requested: str | None) -> list[str]:
    """Requested ∩ (what the resource offers ∩ what the client may get), before policy; everything
    permitted when nothing was requested; nothing left of a non-empty request is ``invalid_scope``."""
    offered = info.scopes if info is not None else frozenset()
    permitted = offered if client.scopes is None else offered & client.scopes
    wanted = [s for s in dict.fromkeys(requested.split()) if s in permitted] if requested else sorted(permitted)
    if requested and not wanted:
        raise InvalidScopeError("None of the requested scopes may be granted for this resource.")
    return wanted


class IssuingGrant:
    """Mixin for Authlib grant classes: ``self.request`` and ``self.server`` come from Authlib."""

    request: AuthzRequest
    server: GrantServer
    TOKEN_RESPONSE_HEADER = TOKEN_HEADERS

    def authenticate_token_endpoint_client(self) -> OAuthClient:
        """Authlib's client authentication, then RFC 9449 §5.2 ``dpop_bound_access_tokens``: "If the
        value is true, the authorization server MUST reject token requests from the client that do
        not contain the DPoP header"."""
        client: OAuthClient = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        if client.dpop_bound_access_tokens and self.request.dpop is None:
            raise DpopProofError("This client must present a DPoP proof with every token request.")
        return client

    def bind(self, req: TokenRequest) -> TokenRequest:
        """Bind the access token to the request's DPoP proof key (RFC 9449 §6: ``cnf.jkt``), if any."""
        proof = self.request.dpop
        return req if proof is None else req.bound_to(proof.jkt)

    def refresh_binding(self) -> str | None:
        """RFC 9449 §5: a public client's refresh token is bound to its proof key (confidential clients'
        refresh tokens are "already sender-constrained" by client authentication)."""
        proof, client = self.request.dpop, self.request.client
        return proof.jkt if proof is not None and isinstance(client, OAuthClient) and client.is_public else None

    @property
    def token_type(self) -> str:
        """RFC 9449 §5.1: "token_type ... DPoP" for a bound token, else Bearer (RFC 6750)."""
        return "Bearer" if self.request.dpop is None else "DPoP"

    def select_resource(self, client: OAuthClient) -> str:
        """RFC 8707 §2: the one resource this token is for, registered and allowed for the client."""
        ctx = self.server.ctx
        return rfc8707.select_resource(
            self.request.values("resource"), ctx.directory.known_resource, lambda uri: self.may_use(client, uri)
        )

    def may_use(self, client: OAuthClient, uri: str) -> bool:
        """The client may get tokens for this resource. The admin API is never reachable through the
        "any registered resource" default: only a client registered for it (authz admin-client create);
        nor is the admin console's audience (only the console's own client)."""
        settings = self.server.ctx.settings
        if uri in (settings.admin_resource, settings.console_resource):
            return client.allowed_resources is not None and uri in client.allowed_resources
        return client.may_use_resource(uri)

    def narrow_scope(
        self,
        client: OAuthClient,
        resource: str,
        requested: str | None,
        subject: Subject | None = None,
        apply_policy: bool = True,
    ) -> str:
        """Granted = requested ∩ (what the resource offers ∩ what the client may get) ∩ what policy permits.

        RFC 6749 §3.3: the server "MAY fully or partially ignore the scope requested by the client"
        and then "MUST include the scope response parameter"; nothing left of a non-empty request is
        ``invalid_scope`` (§5.2). An empty request gets everything permitted. ``subject`` is who the
        token speaks for (default: the client itself); policy is skipped only where the subject is not
        known yet (the authorization request before sign-in; the code is narrowed again when issued).
        """
        wanted = wanted_scopes(client, self.server.ctx.directory.resource(resource), requested)
        if apply_policy:
            wanted = self.apply_policy(subject or client_subject(client), client, resource, wanted)
        return " ".join(wanted)

    def apply_policy(self, subject: Subject, client: OAuthClient, resource: str, scopes: list[str]) -> list[str]:
        """Keep the scopes the loaded Cedar policies permit; none of a non-empty set is ``invalid_scope``.

        The deciding policy ids are kept on the request for the audit trail (issued or refused). The
        admin API is outside scope policy: only clients registered for it explicitly reach it at all.
        """
        ctx = self.server.ctx
        if resource == ctx.settings.admin_resource:
            return scopes
        if resource == ctx.settings.console_resource:  # roles, not Cedar, decide console scopes
            user = ctx.store.get_user_by_name(subject.user) if subject.user else None  # policies name users
            live = user if user and not user.disabled else None
            allowed = role_scopes(ctx.settings, live.username if live else None, scopes, live.groups if live else ())
            if scopes and not allowed:
                self.request.auth_failure = "no_console_role"
                raise InvalidScopeError("This user has no admin console role.")
            return allowed
        decision = self.server.ctx.policy.decide(
            subject, client.client_id, resource, scopes, str(self.request.payload.grant_type or "authorization_code")
        )
        if decision is None:
            return scopes
        self.request.policy_reasons = decision.reasons
        granted = [s for s in scopes if s in decision.permitted]
        if scopes and not granted:
            self.request.auth_failure = "policy_denied"
            log.info(
                "policy refused client %s (%s) every scope it asked of %s: %s [policy set: %s]",
                client.client_id,
                describe_principal(subject),
                resource,
                refusal_reasons(decision),
                self.server.ctx.policy.describe(),
            )
            raise InvalidScopeError("Policy permits none of the requested scopes for this resource.")
        return granted

    def check_same_resource(self, granted: str) -> None:
        """A follow-up request (code redemption, refresh) may repeat ``resource`` but never change it."""
        resources = self.request.values("resource")
        if resources and (len(resources) > 1 or rfc8707.validate_resource_uri(resources[0]) != granted):
            raise InvalidTargetError("The resource must be the one the grant was given for.")

    def revoke_on_replay(self, grant_id: str, event: str, reason: str, **who: str) -> None:
        """A replayed code or a reused refresh token: revoke the whole grant and audit the attempt."""
        ctx = self.server.ctx
        revoke_grant(ctx, grant_id, int(time.time()))
        self.request.auth_failure = reason
        ctx.audit.record(event, "failure", reason=reason, grant_id=grant_id, **who)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every grant's ``create_token_response`` first checks budgets, including the grants
        that sign without :meth:`token_response` (token exchange, jwt-bearer): nothing is signed for a
        principal whose hard budget is exhausted."""
        super().__init_subclass__(**kwargs)
        original = cls.__dict__.get("create_token_response")
        if original is None or getattr(original, "_checks_budget", False):
            return

        @functools.wraps(original)
        def create_token_response(self: IssuingGrant) -> Any:
            self.check_budget()
            return original(self)

        create_token_response._checks_budget = True  # type: ignore[attr-defined]
        setattr(cls, "create_token_response", create_token_response)  # noqa: B010

    def budget_principal(self) -> tuple[str | None, str | None, str | None]:
        """Who would spend with the token about to be issued: ``(agent, team, workflow)``, the same
        values the token carries as claims (the client's ``principal_claims()``; a token exchange adds
        its ``workflow``)."""
        client = getattr(self.request, "client", None)
        claims: dict[str, str] = client.principal_claims() if isinstance(client, OAuthClient) else {}
        workflow = getattr(getattr(self, "exchange", None), "workflow", None)
        return claims.get("agent"), claims.get("team"), workflow if isinstance(workflow, str) else None

    def check_budget(self) -> None:
        """Refuse the token when a hard budget of its agent, team or workflow is exhausted.

        Called before anything is signed. The refusal is audited here (``token.refused``, reason
        ``budget_exhausted`` or ``budget_unavailable``, with the budget id); the token endpoint's own
        refusal audit only covers security events, so it is not recorded twice.
        """
        ctx = self.server.ctx
        agent, team, workflow = self.budget_principal()
        if ctx.budgets is None or not (agent or team or workflow):
            return
        refused = ctx.budgets.check_issuance(agent, team, workflow)
        if refused is None:
            return
        reason = "budget_unavailable" if refused.reason == "unavailable" else "budget_exhausted"
        client = getattr(self.request, "client", None)
        if isinstance(self.request, AuthzRequest):
            self.request.refusal_audited = True
        ctx.audit.refusal(
            "token.refused",
            client_id=getattr(client, "client_id", None),
            resource=self.request.resource,
            reason=reason,
            budget_id=refused.budget_id,
            grant_type=str(self.request.payload.grant_type or ""),
            agent=agent,
            team=team,
            workflow=workflow,
        )
        if refused.reason == "unavailable":
            raise TemporarilyUnavailableError(
                f"The budget ledger is unreachable and budget {refused.budget_id} is a hard cap."
            )
        if refused.retry_after is None:
            raise BudgetExhaustedError(f"budget {refused.budget_id} exhausted (lifetime budget)")
        until = datetime.fromtimestamp(refused.retry_after, UTC).isoformat().replace("+00:00", "Z")
        raise BudgetExhaustedError(
            f"budget {refused.budget_id} exhausted until {until}", refused.retry_after_seconds(time.time())
        )

    def token_response(self, req: TokenRequest, refresh: tuple[int, int] | None = None) -> dict[str, Any]:
        """Sign the access token (and mint a refresh token); audit the issuance."""
        ctx = self.server.ctx
        req = self.bind(req)
        access, claims = ctx.issuer.access_token(req)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": self.token_type,
            "expires_in": req.lifetime,
            "scope": req.scope,
        }
        if refresh is not None:
            lifetime, family_expires_at = refresh
            body["refresh_token"] = ctx.issuer.refresh_token(req, lifetime, family_expires_at)
        ctx.audit.record(
            "token.issued",
            client_id=req.client_id,
            subject=req.subject,
            resource=req.resource,
            grant_type=self.request.payload.grant_type,
            jti=claims["jti"],
            scope=req.scope,
            refresh=refresh is not None,
            policies=list(self.request.policy_reasons) or None,
        )
        return body
