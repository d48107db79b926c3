"""The authorization_code grant (RFC 6749 §4.1) with mandatory PKCE S256 and one resource.

RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once. If an
authorization code is used more than once, the authorization server MUST deny the request and
SHOULD revoke (when possible) all tokens previously issued based on that authorization code."
Codes are consumed with one conditional UPDATE before anything else is checked, so exactly one of
any number of concurrent redemptions can win; a replay revokes the grant the code started.

DPoP (RFC 9449 §10): "dpop_jkt: JWK Thumbprint [...] of the proof-of-possession public key using
the SHA-256 hash function"; "When a token request is received, the authorization server computes
the JWK thumbprint [...] of the proof key in the DPoP proof and verifies that it matches the
dpop_jkt parameter value in the authorization request. If they do not match, it MUST reject the
request." A public client that redeems its code with a proof gets a refresh token bound to that
key (§5: "Refresh tokens issued to [public] clients [...] MUST be bound to the DPoP public key").
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, OAuth2Error, UnauthorizedClientError

from authz.oauth import pkce
from authz.oauth.dpop import DPOP_JKT_RE, DpopProofError
from authz.oauth.grants.base import IssuingGrant
from authz.oauth.tokens import TokenRequest
from authz.policy.engine import local_user_subject
from authz.storage.models import AuthorizationCode, Grant

TOKEN_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]


class AuthorizationCodeGrant(IssuingGrant, grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    # -- authorization endpoint ----------------------------------------------------------------
    def validate_authorization_request(self) -> str:
        redirect_uri: str = grants.authorization_code.validate_code_authorization_request(self)
        try:
            client = self.request.client
            if not client.active:
                raise UnauthorizedClientError("The client is disabled.")
            payload = self.request.payload.data
            pkce.check_challenge(payload.get("code_challenge"), payload.get("code_challenge_method"))
            dpop_jkt = payload.get("dpop_jkt")
            if dpop_jkt is not None and not DPOP_JKT_RE.fullmatch(dpop_jkt):
                raise InvalidRequestError("dpop_jkt must be a base64url SHA-256 JWK thumbprint.")
            resource = self.select_resource(client)
            self.request.resource = resource
            # the user is not known yet: policy narrows the scope again when the code is issued
            self.request.granted_scope = self.narrow_scope(
                client, resource, self.request.payload.scope, apply_policy=False
            )
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> tuple[int, str, list[Any]]:
        if grant_user is None:
            return super().create_authorization_response(redirect_uri, None)  # type: ignore[no-any-return]
        ctx = self.server.ctx
        client = self.request.client
        assert self.request.resource is not None
        try:
            scopes = self.request.granted_scope.split()
            granted = self.apply_policy(local_user_subject(grant_user), client, self.request.resource, scopes)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        self.request.granted_scope = " ".join(granted)
        now = int(time.time())
        code = secrets.token_urlsafe(32)
        client_id = self.request.client.client_id
        assert self.request.resource is not None
        grant = Grant(
            id=uuid.uuid4().hex,
            client_id=client_id,
            subject=grant_user.id,
            resource=self.request.resource,
            scope=self.request.granted_scope,
            created_at=now,
            expires_at=now + ctx.settings.refresh_family_ttl,
        )
        row = AuthorizationCode(
            code_digest=ctx.keyring.digest(code),
            grant_id=grant.id,
            client_id=client_id,
            user_id=grant_user.id,
            redirect_uri=redirect_uri,
            scope=self.request.granted_scope,
            resource=self.request.resource,
            code_challenge=self.request.payload.data["code_challenge"],
            auth_time=now,
            expires_at=now + ctx.settings.code_ttl,
            dpop_jkt=self.request.payload.data.get("dpop_jkt"),
        )
        ctx.store.save_code(row, grant)
        ctx.audit.record(
            "code.issued",
            client_id=client_id,
            subject=grant_user.id,
            resource=row.resource,
            scope=row.scope,
            policies=list(self.request.policy_reasons) or None,
        )
        params = [("code", code)]
        if self.request.payload.state:
            params.append(("state", self.request.payload.state))
        return 302, "", [("Location", add_params_to_uri(redirect_uri, params))]

    # -- token endpoint ------------------------------------------------------------------------
    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.active:
            raise UnauthorizedClientError("The client is disabled.")
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the authorization_code grant.")
        code = self.request.form.get("code")
        if not code:
            raise InvalidRequestError("Missing 'code' in request.")
        ctx = self.server.ctx
        now = int(time.time())
        row, first_use = ctx.store.consume_code(ctx.keyring.digest(code), now)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is invalid.")
        if not first_use:
            who = {"client_id": row.client_id, "subject": row.user_id, "resource": row.resource}
            self.revoke_on_replay(row.grant_id, "code.replayed", "code_replay", **who)
            raise InvalidGrantError("The authorization code was already used.")
        if row.expires_at <= now:
            raise InvalidGrantError("The authorization code has expired.")
        if self.request.form.get("redirect_uri") != row.redirect_uri:
            raise InvalidGrantError("redirect_uri does not match the authorization request.")
        try:
            pkce.check_verifier(self.request.form.get("code_verifier"), row.code_challenge)
        except InvalidGrantError:
            self.request.auth_failure = "pkce_mismatch"
            raise
        self.check_same_resource(row.resource)
        if row.dpop_jkt is not None:
            if self.request.dpop is None:
                raise DpopProofError("The authorization code is bound to a DPoP key: present a proof.")
            if self.request.dpop.jkt != row.dpop_jkt:
                raise InvalidGrantError("The DPoP proof key does not match the dpop_jkt of the authorization request.")
        self.request.client = client
        self.request.authorization_code = row

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        ctx = self.server.ctx
        row: AuthorizationCode = self.request.authorization_code
        grant = ctx.store.get_grant(row.grant_id)
        if grant is None or grant.revoked_at is not None:
            raise InvalidGrantError("The grant was revoked.")
        req = TokenRequest(
            client_id=row.client_id,
            subject=row.user_id,
            resource=row.resource,
            scope=row.scope,
            lifetime=ctx.settings.access_token_ttl,
            grant_id=row.grant_id,
            refresh_jkt=self.refresh_binding(),
        )
        refresh = None
        if self.request.client.check_grant_type("refresh_token"):
            refresh = (ctx.settings.refresh_token_ttl, grant.expires_at)
        return 200, self.token_response(req, refresh), self.TOKEN_RESPONSE_HEADER
