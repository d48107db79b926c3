"""RFC 7662 token introspection, for resource servers only, about their own tokens only.

RFC 7662 §2.1: "To prevent token scanning attacks, the endpoint MUST also require some form of
authorization to access this endpoint" — callers authenticate as a registered resource server.
§2.2: "If the introspection call is properly authorized but the token is not active, does not
exist on this server, or the protected resource is not allowed to introspect this particular token,
then the authorization server MUST return an introspection response with the 'active' field set to
'false'" — so a token for another audience is inactive for this caller, as are expired, revoked,
unknown tokens and tokens of a disabled client. Introspection is authoritative: it applies every
revocation (token, grant, client, agent) that a JWT alone cannot carry.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _Base

from authz.oauth.token_checks import active_claims

HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]
INACTIVE: dict[str, Any] = {"active": False}


class IntrospectionEndpoint(_Base):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.authenticate_endpoint_client(request)
        if client.kind != "resource_server" or not client.active or not client.resource_uri:
            raise InvalidClientError(status_code=401, description="Only registered resource servers may introspect.")
        self.check_params(request, client)
        return 200, self.inspect(request.form["token"], client.resource_uri), HEADERS

    def inspect(self, token: str, audience: str) -> dict[str, Any]:
        ctx = self.server.ctx
        claims = active_claims(ctx.issuer, ctx.revocations, ctx.directory, token, audience)
        if claims is None:
            return INACTIVE
        # RFC 9449 §6.2: a bound token's introspection response carries "cnf" with "jkt" (from the
        # claims) and token_type "DPoP" (RFC 9449 §6.2 example), so a resource server can check the proof.
        return {"active": True, "token_type": "DPoP" if "cnf" in claims else "Bearer", **claims}
