"""The client_credentials grant (RFC 6749 §4.4) for agents and other machine clients.

RFC 6749 §4.4.2: "The client MUST authenticate with the authorization server"; §4.4.3: "A refresh
token SHOULD NOT be included." MCP's client-credentials extension recommends ``private_key_jwt``
(RFC 7523 §2.2) and allows a client secret. The token's subject is the client itself.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import UnauthorizedClientError

from authz.oauth.grants.base import IssuingGrant
from authz.oauth.tokens import TokenRequest


class ClientCredentialsGrant(IssuingGrant, grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.active:
            raise UnauthorizedClientError("The client is disabled.")
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the client_credentials grant.")
        resource = self.select_resource(client)
        self.request.client = client
        self.request.resource = resource
        self.request.granted_scope = self.narrow_scope(client, resource, self.request.payload.scope)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.request.client
        assert self.request.resource is not None
        req = TokenRequest(
            client_id=client.client_id,
            subject=client.client_id,
            resource=self.request.resource,
            scope=self.request.granted_scope,
            lifetime=self.server.ctx.settings.access_token_ttl,
            extra=client.principal_claims(),
        )
        return 200, self.token_response(req), self.TOKEN_RESPONSE_HEADER
