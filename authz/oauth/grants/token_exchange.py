"""RFC 8693 token exchange: trade a token for a narrower one for exactly one MCP server.

Our profile (docs/token-exchange.md has the whole of it):

- The caller authenticates as a confidential client allowed this grant (RFC 8693 §2.1: "client
  authentication ... is used as it is in any other token request").
- ``subject_token`` (REQUIRED, §2.1) is one of our access tokens
  (``urn:ietf:params:oauth:token-type:access_token``, checked as introspection checks it: signature,
  ``typ``, ``iss``, ``exp``, revocation, owner client active) or a JWT
  (``urn:ietf:params:oauth:token-type:jwt``): ours, or from a trusted issuer of kind ``subject``
  whose ``aud`` names us. ``actor_token`` (§2.1 OPTIONAL) takes the same kinds; its type "is
  REQUIRED when the actor_token parameter is present ... and MUST NOT be included otherwise".
- ``act`` (§4.1): "The outermost act claim represents the current actor while nested act claims
  represent prior actors." The current actor is the ``actor_token``'s principal, else the
  authenticated client unless it is the subject itself; the subject token's own ``act`` nests inside.
- ``may_act`` (§4.4): "a claim ... that identifies a party to whom the subject ... is authorized to
  delegate": when the subject token has one, the actor must match it.
- ``resource`` is required (exactly one, registered, allowed for the client) and becomes ``aud``;
  ``audience`` is accepted only when it names that same resource (§2.2.2: "If the authorization
  server is unwilling or unable to issue a token for any target service indicated by the resource
  or audience parameters, the invalid_target error code SHOULD be used").
- Exchange only narrows: scopes requested ∩ the subject's scopes ∩ what the client may get at the
  resource; lifetime ≤ the subject's (and actor's) remaining life and the configured cap.
- §2.2.1 response: ``access_token``, ``issued_token_type``, ``token_type`` (Bearer, or DPoP),
  ``expires_in``, ``scope``; no refresh token.
- DPoP (RFC 9449 §5 applies to "all access token requests regardless of grant type"): the issued
  token is bound to the proof key of the request, i.e. the key of the actor that asks for it. A
  DPoP-bound ``actor_token`` (``cnf.jkt``) is only accepted with a proof by that same key, and so is
  a bound ``subject_token`` the client exchanges for itself: a stolen bound token cannot be
  laundered into a new one through exchange.

Errors: §2.2.2 asks for ``invalid_request`` when a subject or actor token is invalid; we answer
``invalid_grant`` (RFC 6749 §5.2: the grant "is invalid, expired, revoked ... or was issued to
another client"), the code clients already handle for dead credentials, as our issue specifies.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)

from authz.context import Context
from authz.identity.clients import OAuthClient
from authz.oauth.errors import InvalidTargetError
from authz.oauth.grants.base import IssuingGrant
from authz.oauth.token_checks import active_claims
from authz.oauth.tokens import TokenRequest
from authz.oauth.trust import TrustedIssuers, TrustError, audiences, check_lifetime, unverified_issuer
from authz.policy.engine import Subject, client_subject

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_TYPES = (ACCESS_TOKEN, JWT)
WORKFLOW_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
FOREIGN_MAX_LIFETIME = 24 * 3600  # a trusted issuer's subject token may live this long at most
SINGLE_PARAMS = (
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "scope",
    "workflow",
)


@dataclass(frozen=True)
class Party:
    """A verified subject or actor token: who it names and what it carries."""

    sub: str
    iss: str
    claims: dict[str, Any]
    ours: bool
    scopes: frozenset[str]
    exp: int

    @property
    def client_id(self) -> str | None:
        value = self.claims.get("client_id") if self.ours else None
        return value if isinstance(value, str) else None

    def actor_entry(self) -> dict[str, Any]:
        """This party as an ``act`` member: ``sub``, plus ``client_id`` (ours) or ``iss`` (foreign)."""
        entry: dict[str, Any] = {"sub": self.sub}
        if self.ours:
            if self.client_id:
                entry["client_id"] = self.client_id
        else:
            entry["iss"] = self.iss
        return entry


@dataclass(frozen=True)
class Exchange:
    """What validation decided, for issuance."""

    subject: Party
    act: dict[str, Any] | None
    lifetime: int
    workflow: str | None


def client_actor(client: OAuthClient) -> dict[str, Any]:
    """The authenticated client as the current actor (an agent's client_id is its agent id)."""
    return {"sub": client.agent_id or client.client_id, "client_id": client.client_id}


def live_claims(ctx: Context, token: str) -> dict[str, Any] | None:
    """One of our access tokens, if it is active: introspection's checks, without the audience."""
    return active_claims(ctx.issuer, ctx.revocations, ctx.directory, token, None)


def act_depth(act: object) -> int:
    depth = 0
    while isinstance(act, dict):
        depth += 1
        act = act.get("act")
    return depth


def actor_ids(act: object) -> list[str]:
    ids = []
    while isinstance(act, dict):
        ids.append(str(act.get("sub")))
        act = act.get("act")
    return ids


def may_act_allows(may_act: object, actor: dict[str, Any], our_issuer: str) -> bool:
    """RFC 8693 §4.4: every identifying member of ``may_act`` must match the actor."""
    if not isinstance(may_act, dict):
        return False
    checked = False
    for key in ("sub", "client_id", "iss"):
        if key not in may_act:
            continue
        value = actor.get(key, our_issuer if key == "iss" else None)
        if may_act[key] != value:
            return False
        checked = True
    return checked


class TokenExchangeGrant(IssuingGrant, BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    exchange: Exchange

    # -- validation --------------------------------------------------------------------------
    def validate_token_request(self) -> None:
        client: OAuthClient = self.authenticate_token_endpoint_client()
        if not client.active:
            raise UnauthorizedClientError("The client is disabled.")
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use token exchange.")
        params = self._params()
        resource = self.select_resource(client)
        for audience in self.request.values("audience"):
            if audience != resource:
                raise InvalidTargetError("The 'audience' must name the requested resource.")
        subject = self._party(params["subject_token"], params["subject_token_type"], "subject_token")
        actor = None
        if params["actor_token"]:
            actor = self._party(params["actor_token"], params["actor_token_type"], "actor_token")
        own = subject.sub in (client.client_id, client.agent_id)
        self._check_possession(actor if actor is not None else subject if own else None)
        act = self._act_chain(client, subject, actor)
        now = int(time.time())
        settings = self.server.ctx.settings
        lifetime = min(settings.exchange_token_ttl, settings.access_token_ttl, subject.exp - now)
        if actor is not None:
            lifetime = min(lifetime, actor.exp - now)
        if lifetime <= 0:
            raise InvalidGrantError("The subject or actor token has expired.")
        self.request.client = client
        self.request.resource = resource
        workflow = self._workflow(subject, params["workflow"])
        who = self._policy_subject(client, subject, act, workflow)
        self.request.granted_scope = self._scope(client, resource, subject, params["scope"], who)
        self.exchange = Exchange(subject, act, lifetime, workflow)

    def _check_possession(self, party: Party | None) -> None:
        """A bound actor token (or the client's own bound token) needs a proof by its key."""
        cnf = party.claims.get("cnf") if party is not None and party.ours else None
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if jkt is None:
            return
        proof = self.request.dpop
        if proof is None or proof.jkt != jkt:
            raise InvalidGrantError("The token is DPoP-bound: present a proof by the key it is bound to.")

    def _params(self) -> dict[str, str | None]:
        datalist = self.request.payload.datalist
        params: dict[str, str | None] = {}
        for name in SINGLE_PARAMS:
            values = datalist.get(name)
            if values and len(values) > 1:
                raise InvalidRequestError(f"'{name}' must not repeat.")
            params[name] = values[0] or None if values else None
        if not params["subject_token"] or not params["subject_token_type"]:
            raise InvalidRequestError("'subject_token' and 'subject_token_type' are required.")
        if bool(params["actor_token"]) != bool(params["actor_token_type"]):
            raise InvalidRequestError("'actor_token_type' is required with 'actor_token', and only with it.")
        requested = params["requested_token_type"]
        if requested is not None and requested not in TOKEN_TYPES:
            raise InvalidRequestError("Only access tokens can be requested.")
        workflow = params["workflow"]
        if workflow is not None and not WORKFLOW_RE.fullmatch(workflow):
            raise InvalidRequestError("'workflow' must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return params

    def _party(self, token: str | None, token_type: str | None, name: str) -> Party:
        assert token is not None
        ctx = self.server.ctx
        if token_type not in TOKEN_TYPES:
            raise InvalidRequestError(f"Unsupported {name}_type.")
        if token_type == ACCESS_TOKEN or unverified_issuer(token) == ctx.settings.issuer:
            claims = live_claims(ctx, token)
            if claims is None or not isinstance(claims.get("sub"), str):
                raise InvalidGrantError(f"The {name} is invalid, expired or revoked.")
            return Party(
                sub=claims["sub"],
                iss=ctx.settings.issuer,
                claims=claims,
                ours=True,
                scopes=frozenset(str(claims.get("scope") or "").split()),
                exp=int(claims["exp"]),
            )
        return self._foreign_party(token, name)

    def _foreign_party(self, token: str, name: str) -> Party:
        ctx = self.server.ctx
        trust: TrustedIssuers = self.server.trust
        try:
            verified = trust.verify(token, "subject")
            claims = verified.claims
            if (verified.issuer.audience or ctx.settings.issuer) not in audiences(claims):
                raise TrustError("The token is not for this server.")
            check_lifetime(claims, int(time.time()), FOREIGN_MAX_LIFETIME, require_iat=False)
        except TrustError as exc:
            raise InvalidGrantError(f"The {name} is not acceptable: {exc}") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidGrantError(f"The {name} has no subject.")
        return Party(
            sub=sub,
            iss=verified.issuer.issuer,
            claims=claims,
            ours=False,
            scopes=_scopes_of(claims),
            exp=int(claims["exp"]),
        )

    def _act_chain(self, client: OAuthClient, subject: Party, actor: Party | None) -> dict[str, Any] | None:
        prior = subject.claims.get("act")
        prior = prior if isinstance(prior, dict) else None
        if actor is not None:
            current: dict[str, Any] | None = actor.actor_entry()
        elif subject.ours and subject.sub in (client.client_id, client.agent_id):
            current = None  # the client exchanges its own token: nobody acts for anybody
        else:
            current = client_actor(client)
        if current is None:
            return prior
        if "may_act" in subject.claims and not may_act_allows(
            subject.claims["may_act"], current, self.server.ctx.settings.issuer
        ):
            raise InvalidGrantError("The subject token does not allow this actor (may_act).")
        if prior is not None and all(prior.get(k) == v for k, v in current.items()):
            return prior  # the current actor narrows its own delegated token: no new hop
        act = {**current, "act": prior} if prior is not None else current
        if act_depth(act) > self.server.ctx.settings.exchange_max_act_depth:
            raise InvalidRequestError("The delegation chain is too long.")
        return act

    def _scope(self, client: OAuthClient, resource: str, subject: Party, requested: str | None, who: Subject) -> str:
        if requested:
            if any(s not in subject.scopes for s in requested.split()):
                raise InvalidScopeError("Exchange cannot add scopes the subject token does not hold.")
            return self.narrow_scope(client, resource, requested, who)
        if not subject.scopes:
            raise InvalidScopeError("The subject token holds no scopes.")
        return self.narrow_scope(client, resource, " ".join(sorted(subject.scopes)), who)

    def _policy_subject(
        self, client: OAuthClient, subject: Party, act: dict[str, Any] | None, workflow: str | None
    ) -> Subject:
        """Policy sees the acting client (an agent, with its team) and, when it acts for someone else, that
        the token is delegated, for whom (a local user by username, with their groups; another of our
        clients by its id; a foreign subject as ``issuer#sub``), and how deep the ``act`` chain is."""
        acting = client_subject(client, workflow)
        own = subject.sub in (client.client_id, client.agent_id)
        if own:
            return acting
        groups: tuple[str, ...] = ()
        if subject.ours:
            user = subject.sub
            # A client's own token (client_credentials: sub == client_id) names no local user: no SQL read.
            local = None if subject.sub == subject.client_id else self.server.ctx.store.get_user(subject.sub)
            if local is not None:
                user, groups = local.username, tuple(local.groups or ())
        else:
            user = f"{subject.iss}#{subject.sub}"
        return replace(acting, delegated=True, user=user, user_groups=groups, act_depth=act_depth(act))

    @staticmethod
    def _workflow(subject: Party, requested: str | None) -> str | None:
        held = subject.claims.get("workflow")
        held = held if isinstance(held, str) and WORKFLOW_RE.fullmatch(held) else None
        if requested is not None and held is not None and requested != held:
            raise InvalidRequestError("The subject token belongs to another workflow.")
        return requested or held

    # -- issuance ----------------------------------------------------------------------------
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client
        ex = self.exchange
        subject = ex.subject
        assert self.request.resource is not None
        extra: dict[str, Any] = dict(client.principal_claims())
        if ex.workflow:
            extra["workflow"] = ex.workflow
        sid = subject.claims.get("sid") if subject.ours else None
        req = TokenRequest(
            client_id=client.client_id,
            subject=subject.sub,
            resource=self.request.resource,
            scope=self.request.granted_scope,
            lifetime=ex.lifetime,
            grant_id=sid if isinstance(sid, str) else None,  # dies with the subject's grant
            act=ex.act,
            extra=extra,
        )
        ctx = self.server.ctx
        req = self.bind(req)  # bound to the requesting actor's proof key (RFC 9449 §5)
        access, claims = ctx.issuer.access_token(req)
        ctx.audit.record(
            "token.exchanged",
            client_id=client.client_id,
            subject=subject.sub,
            resource=req.resource,
            subject_issuer=None if subject.ours else subject.iss,
            subject_jti=subject.claims.get("jti"),
            actors=actor_ids(ex.act),
            jti=claims["jti"],
            scope=req.scope,
            workflow=ex.workflow,
            policies=list(self.request.policy_reasons) or None,
        )
        body = {
            "access_token": access,
            "issued_token_type": ACCESS_TOKEN,
            "token_type": self.token_type,
            "expires_in": req.lifetime,
            "scope": req.scope,
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER


def _scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 8693 §4.2, space-separated) or ``scp`` (a list, common in IdP tokens)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()


def exchange_can_run_inline(form: dict[str, str], trust: TrustedIssuers, our_issuer: str) -> bool:
    """Memory only, unless a subject/actor JWT from a trusted issuer needs its record or keys loaded."""
    for name in ("subject_token", "actor_token"):
        token = form.get(name)
        if token and form.get(f"{name}_type") == JWT:
            iss = unverified_issuer(token)
            if iss != our_issuer and not trust.ready(iss):
                return False
    return True
