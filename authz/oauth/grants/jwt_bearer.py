"""RFC 7523 jwt-bearer grant for Identity Assertion JWT Authorization Grants (ID-JAG).

MCP Enterprise-Managed Authorization (SEP-990), leg 2: the client presents an ID-JAG its enterprise
IdP issued, as ``assertion`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, and
authenticates as itself. The extension's MUSTs for the AS, each kept here:

- the header ``typ`` is ``oauth-id-jag+jwt``;
- the signature is verified against the trusted IdP's keys with an explicit algorithm allow-list,
  never ``none`` (:mod:`authz.oauth.trust`: asymmetric algorithms only, per issuer);
- ``iss`` (a registered trusted issuer of kind ``idp``), ``aud`` (exactly our issuer), ``sub``,
  ``iat`` and ``exp`` are validated, and a replayed ``jti`` is refused until ``exp``;
- the ``client_id`` claim equals the authenticated client;
- ``resource`` is one of our registered resources the client may use (otherwise ``invalid_grant``),
  and the issued token is audience-restricted to it; a ``resource`` request parameter that names
  another resource is ``invalid_target``;
- scopes are requested ∩ the assertion's ``scope`` (∩ what the client may get at the resource);
- ID-JAGs are never logged (only their issuer and ``jti`` reach the audit trail).

RFC 7523 §3: "The JWT MUST contain an 'exp' (expiration time) claim that limits the time window
during which the JWT can be used"; §3.1: a JWT that is not valid is ``invalid_grant``. A ``cnf``
or ``authorization_details`` claim is refused: we support neither confirmation method nor RAR,
and silently dropping a constraint would widen the grant. No refresh token is issued.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)

from authz.identity.clients import OAuthClient
from authz.oauth import rfc8707
from authz.oauth.errors import InvalidTargetError
from authz.oauth.grants.base import IssuingGrant
from authz.oauth.tokens import TokenRequest
from authz.oauth.trust import LEEWAY, TrustedIssuers, TrustError, audiences, check_lifetime
from authz.policy.engine import Subject, user_subject

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYP = "oauth-id-jag+jwt"
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"
UNSUPPORTED_CLAIMS = ("cnf", "authorization_details")


class JwtBearerGrant(IssuingGrant, BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    assertion_claims: dict[str, Any]

    def validate_token_request(self) -> None:
        client: OAuthClient = self.authenticate_token_endpoint_client()
        if not client.active:
            raise UnauthorizedClientError("The client is disabled.")
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the jwt-bearer grant.")
        values = self.request.values("assertion")
        if len(values) != 1 or not values[0]:
            raise InvalidRequestError("Exactly one 'assertion' is required.")
        ctx = self.server.ctx
        trust: TrustedIssuers = self.server.trust
        now = int(time.time())
        try:
            claims = trust.verify(values[0], "idp", typ=ID_JAG_TYP).claims
            if audiences(claims) != {ctx.settings.issuer}:
                raise TrustError("The assertion is not for this server.")
            check_lifetime(claims, now, ctx.settings.assertion_max_lifetime, require_iat=True)
        except TrustError as exc:
            raise InvalidGrantError(f"The assertion is not acceptable: {exc}") from exc
        sub, jti = claims.get("sub"), claims.get("jti")
        if not isinstance(sub, str) or not sub:
            raise InvalidGrantError("The assertion has no subject.")
        if not isinstance(jti, str) or not jti:
            raise InvalidGrantError("The assertion has no jti.")
        if claims.get("client_id") != client.client_id:
            raise InvalidGrantError("The assertion was issued to another client.")
        if any(name in claims for name in UNSUPPORTED_CLAIMS):
            raise InvalidGrantError("The assertion carries a constraint this server does not support.")
        resource = self._resource(client, claims.get("resource"))
        scope = self._scope(client, resource, claims.get("scope"), _user(claims))
        # Last, so a refused request does not burn the assertion: replay guard until exp (+ leeway).
        if not ctx.store.remember_jti(f"id-jag|{claims['iss']}|{jti}", int(claims["exp"]) + LEEWAY, now):
            self.request.auth_failure = "assertion_replay"
            raise InvalidGrantError("The assertion was already used.")
        self.request.client = client
        self.request.resource = resource
        self.request.granted_scope = scope
        self.assertion_claims = claims

    def _resource(self, client: OAuthClient, claimed: object) -> str:
        requested = self.request.values("resource")
        if claimed is None:
            return self.select_resource(client)
        if not isinstance(claimed, str):
            raise InvalidGrantError("The assertion's resource is invalid.")
        try:
            uri = rfc8707.validate_resource_uri(claimed)
        except InvalidTargetError as exc:
            raise InvalidGrantError("The assertion's resource is invalid.") from exc
        ctx = self.server.ctx
        if not ctx.directory.known_resource(uri) or not self.may_use(client, uri):
            raise InvalidGrantError("The assertion's resource is not a resource of this server for this client.")
        if len(requested) > 1 or (requested and rfc8707.validate_resource_uri(requested[0]) != uri):
            raise InvalidTargetError("The 'resource' parameter does not match the assertion.")
        return uri

    def _scope(self, client: OAuthClient, resource: str, claimed: object, who: Subject) -> str:
        requested = self.request.payload.scope
        if claimed is None:  # the IdP placed no scope bound: the resource and the client's ceiling do
            return self.narrow_scope(client, resource, requested, who)
        if not isinstance(claimed, str):
            raise InvalidGrantError("The assertion's scope is invalid.")
        held = claimed.split()
        wanted = [s for s in requested.split() if s in held] if requested else held
        if not wanted:
            raise InvalidScopeError("None of the requested scopes is in the assertion.")
        return self.narrow_scope(client, resource, " ".join(wanted), who)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client
        claims = self.assertion_claims
        assert self.request.resource is not None
        req = TokenRequest(
            client_id=client.client_id,
            subject=claims["sub"],
            resource=self.request.resource,
            scope=self.request.granted_scope,
            lifetime=self.server.ctx.settings.access_token_ttl,
            extra=client.principal_claims(),
        )
        ctx = self.server.ctx
        req = self.bind(req)  # RFC 9449 §5: every grant type may ask for a DPoP-bound token
        access, issued = ctx.issuer.access_token(req)
        ctx.audit.record(
            "token.issued",
            client_id=req.client_id,
            subject=req.subject,
            resource=req.resource,
            grant_type=GRANT_TYPE,
            idp=claims["iss"],
            assertion_jti=claims["jti"],
            jti=issued["jti"],
            scope=req.scope,
            refresh=False,
        )
        body = {"access_token": access, "token_type": self.token_type, "expires_in": req.lifetime, "scope": req.scope}
        return 200, body, self.TOKEN_RESPONSE_HEADER


def _user(claims: dict[str, Any]) -> Subject:
    """The enterprise user the ID-JAG names, as policy sees it: ``<idp issuer>#<sub>``, delegating."""
    return user_subject(f"{claims.get('iss')}#{claims.get('sub')}")
