"""The refresh_token grant (RFC 6749 §6) with rotation and reuse detection.

OAuth 2.1 §4.3.1: "Authorization servers MUST utilize one of these methods to detect refresh token
replay by malicious actors for public clients: Sender-constrained refresh tokens ... Refresh token
rotation". We rotate for every client: each use spends the token and returns a new one in the same
family; presenting a spent token revokes the whole family (every refresh token and every access
token of the grant). RFC 6749 §6: the requested scope "MUST NOT include any scope not originally
granted by the resource owner" — scope can only shrink.

DPoP (RFC 9449 §5): a public client's refresh token bound to a proof key (``dpop_jkt``) is spent
only with a proof by that key, and its successor stays bound; a public client that starts using
DPoP gets a bound successor. Confidential clients' refresh tokens are not bound ("they are already
sender-constrained with a different existing mechanism"); their access tokens follow the proof.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)

from authz.oauth.dpop import DpopProofError
from authz.oauth.grants.authorization_code import TOKEN_AUTH_METHODS
from authz.oauth.grants.base import IssuingGrant
from authz.oauth.tokens import TokenRequest
from authz.storage.models import Grant, RefreshToken


class RefreshTokenGrant(IssuingGrant, grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.active:
            raise UnauthorizedClientError("The client is disabled.")
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the refresh_token grant.")
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        ctx = self.server.ctx
        now = int(time.time())
        row, first_use = ctx.store.spend_refresh_token(ctx.keyring.digest(value), now)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The refresh token is invalid.")
        if not first_use:
            who = {"client_id": row.client_id, "subject": row.subject, "resource": row.resource}
            self.revoke_on_replay(row.grant_id, "refresh.reused", "refresh_token_reuse", **who)
            raise InvalidGrantError("The refresh token was already used; its grant is revoked.")
        grant = ctx.store.get_grant(row.grant_id)
        if row.expires_at <= now or grant is None or grant.revoked_at is not None or grant.expires_at <= now:
            raise InvalidGrantError("The refresh token has expired or was revoked.")
        self.check_same_resource(row.resource)
        if row.dpop_jkt is not None:
            if self.request.dpop is None:
                raise DpopProofError("The refresh token is bound to a DPoP key: present a proof.")
            if self.request.dpop.jkt != row.dpop_jkt:
                raise InvalidGrantError("The refresh token is bound to another DPoP key.")
        original = row.scope.split()
        requested = (self.request.payload.scope or "").split()
        if any(s not in original for s in requested):
            raise InvalidScopeError("A refresh can only keep or narrow the granted scope.")
        self.request.client = client
        self.request.refresh_token = row
        self.request.grant = grant
        self.request.granted_scope = " ".join(requested) if requested else row.scope

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        ctx = self.server.ctx
        row: RefreshToken = self.request.refresh_token
        grant: Grant = self.request.grant
        req = TokenRequest(
            client_id=row.client_id,
            subject=row.subject,
            resource=row.resource,
            scope=self.request.granted_scope,
            lifetime=ctx.settings.access_token_ttl,
            grant_id=row.grant_id,
            refresh_jkt=row.dpop_jkt
            or (self.request.dpop.jkt if self.request.dpop and self.request.client.is_public else None),
        )
        body = self.token_response(req, (ctx.settings.refresh_token_ttl, grant.expires_at))
        return 200, body, self.TOKEN_RESPONSE_HEADER
