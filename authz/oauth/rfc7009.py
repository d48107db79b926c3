"""RFC 7009 token revocation.

RFC 7009 §2.1: the server "first validates the client credentials (in case of a confidential
client) and then verifies whether the token was issued to the client making the revocation
request"; "If the token passed to the request is a refresh token and the authorization server
supports the revocation of access tokens, then the authorization server SHOULD also invalidate all
access tokens based on the same authorization grant". §2.2: "The authorization server responds with
HTTP status code 200 if the token has been revoked successfully or if the client submitted an
invalid token" — unknown tokens and other clients' tokens get 200 and change nothing.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint as _Base

from authz.identity.revocations import revoke_grant

HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class RevocationEndpoint(_Base):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.authenticate_endpoint_client(request)
        self.check_params(request, client)
        token = request.form["token"]
        hint = request.form.get("token_type_hint")
        if hint != "refresh_token" and self._revoke_access_token(token, client.client_id):
            return 200, {}, HEADERS
        self._revoke_refresh_token(token, client.client_id)
        return 200, {}, HEADERS

    def _revoke_access_token(self, token: str, client_id: str) -> bool:
        ctx = self.server.ctx
        claims = ctx.issuer.verify(token)
        if claims is None:
            return False
        if claims.get("client_id") == client_id and int(claims.get("exp", 0)) > time.time():
            ctx.revocations.revoke("jti", str(claims["jti"]), int(claims["exp"]))
            ctx.audit.record(
                "token.revoked",
                client_id=client_id,
                subject=claims.get("sub"),
                resource=claims.get("aud"),
                jti=claims["jti"],
            )
        return True

    def _revoke_refresh_token(self, token: str, client_id: str) -> None:
        ctx = self.server.ctx
        row = ctx.store.find_refresh_token(ctx.keyring.digest(token))
        if row is None or row.client_id != client_id:
            return
        revoke_grant(ctx, row.grant_id, int(time.time()))
        ctx.audit.record(
            "grant.revoked", client_id=client_id, subject=row.subject, resource=row.resource, grant_id=row.grant_id
        )
