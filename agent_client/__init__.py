"""An agent-side OAuth client for MCP servers protected by ``authz`` (or any RFC 8414 authorization server).

``TokenSource`` obtains and caches an access token for one MCP server (client_credentials with
``private_key_jwt`` or a client secret, or RFC 8693 exchange of a user's token); ``BearerAuth`` is
the ``httpx2.Auth`` that puts it on every request and retries once on 401, so it plugs into the MCP
SDK client::

    source = await TokenSource.for_server(url, PrivateKeyJwt("agt_123", pem))
    http = httpx2.AsyncClient(auth=BearerAuth(source))
    async with mcp.Client(streamable_http_client(url, http_client=http)) as client: ...

With a ``DpopSession`` the tokens are DPoP-bound (RFC 9449) and ``DpopAuth`` presents them with
a fresh proof per request (:mod:`agent_client.dpop`).

This package imports neither ``authz`` nor ``resource_server``: it talks HTTP only.
"""

from agent_client.auth import BearerAuth
from agent_client.credentials import ClientCredential, ClientSecret, PrivateKeyJwt
from agent_client.discovery import AuthServer, DiscoveryError, ProtectedResource, discover, discover_resource
from agent_client.dpop import DpopSession
from agent_client.dpop_auth import DpopAuth
from agent_client.grants import ClientCredentials, Grant, TokenExchange
from agent_client.token_source import Token, TokenError, TokenSource

__all__ = [
    "AuthServer",
    "BearerAuth",
    "ClientCredential",
    "ClientCredentials",
    "ClientSecret",
    "DiscoveryError",
    "DpopAuth",
    "DpopSession",
    "Grant",
    "PrivateKeyJwt",
    "ProtectedResource",
    "Token",
    "TokenError",
    "TokenExchange",
    "TokenSource",
    "discover",
    "discover_resource",
]
