"""Adapters for the MCP Python SDK (the optional ``mcp`` extra).

Two ways to protect an SDK server:

1. Our middleware around ``MCPServer.streamable_http_app()`` (per-tool scopes, challenges with
   ``scope``, the token-use hook): :func:`protect_mcp_app`. Inside tools, both our
   ``current_token()`` and the SDK's ``get_access_token()`` work, and the SDK's stateful sessions
   stay bound to the principal that opened them.
2. The SDK's own wiring, ``MCPServer(token_verifier=..., auth=AuthSettings(...))``, with our
   validation underneath: :class:`SdkTokenVerifier` and :func:`sdk_auth_settings`. (The SDK then
   enforces one scope set for the whole endpoint and its challenges carry no ``scope``.)
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from starlette.types import ASGIApp

from resource_server.context import TokenInfo
from resource_server.dpop import ReplayCache
from resource_server.errors import AuthError
from resource_server.hooks import TokenUseHook
from resource_server.middleware import ResourceServerMiddleware
from resource_server.settings import ResourceServerConfig
from resource_server.verifier import ConfiguredVerifier, TokenVerifier

__all__ = ["SdkTokenVerifier", "access_token", "protect_mcp_app", "sdk_auth_settings", "sdk_user"]


def access_token(info: TokenInfo, token: str, resource: str | None = None) -> AccessToken:
    """The SDK's view of a validated token (``claims`` carries ``iss``, ``act``, ``agent``...)."""
    return AccessToken(
        token=token,
        client_id=info.client_id or "",
        scopes=sorted(info.scopes),
        expires_at=info.expires_at,
        resource=resource if resource is not None else (info.audience[0] if info.audience else None),
        subject=info.subject,
        claims=dict(info.claims),
    )


def sdk_user(info: TokenInfo, token: str) -> Any:
    """``scope["user"]`` as the SDK expects it (``AuthenticatedUser`` wrapping an ``AccessToken``)."""
    return AuthenticatedUser(access_token(info, token))


def protect_mcp_app(
    app: ASGIApp,
    config: ResourceServerConfig,
    *,
    hook: TokenUseHook | None = None,
    dpop_replay: ReplayCache | None = None,
) -> ASGIApp:
    """Wrap an SDK Streamable HTTP app: our middleware outside, the SDK's auth context inside.

    ``dpop_replay`` shares the DPoP ``jti`` cache between replicas (``resource_server.dpop.RedisReplayCache``).
    """
    return ResourceServerMiddleware(
        AuthContextMiddleware(app), config, hook=hook, user_factory=sdk_user, dpop_replay=dpop_replay
    )


class SdkTokenVerifier:
    """The SDK's ``TokenVerifier`` protocol on top of one of our verifiers."""

    def __init__(self, verifier: TokenVerifier, resource: str) -> None:
        self._verifier = verifier
        self._resource = resource

    @classmethod
    def from_config(cls, config: ResourceServerConfig) -> SdkTokenVerifier:
        """Our verifier for ``config`` (its HTTP client is created inside the serving loop)."""
        return cls(ConfiguredVerifier(config), config.resource)

    async def aclose(self) -> None:
        """Release the HTTP client of a verifier built by :meth:`from_config`."""
        if isinstance(self._verifier, ConfiguredVerifier):
            await self._verifier.aclose()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            info = await self._verifier.verify(token)
        except AuthError:
            # The SDK knows only "valid" or "not": an unreachable AS also answers 401 here.
            return None
        return access_token(info, token, self._resource)


def sdk_auth_settings(config: ResourceServerConfig, required_scopes: list[str] | None = None) -> AuthSettings:
    """``AuthSettings`` with issuer and resource passed as exact strings (no trailing slash added)."""
    issuer: Any = config.issuer
    resource: Any = config.resource
    return AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource,
        required_scopes=required_scopes if required_scopes is not None else sorted(config.scope_policy.default),
        validate_token_resource=True,
    )
