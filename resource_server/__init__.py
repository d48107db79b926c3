"""Protect an MCP server (any ASGI app) with OAuth 2.1 bearer tokens from the ``authz`` AS.

    from resource_server import ResourceServerConfig, ResourceServerMiddleware, ScopePolicy

    app = ResourceServerMiddleware(app, ResourceServerConfig(
        resource="https://mcp.example.com/mcp", issuer="https://auth.example.com", mode="jwt",
        scope_policy=ScopePolicy.build(default=["tools:read"], tools={"write_note": ["tools:write"]}),
    ))

MCP SDK helpers live in :mod:`resource_server.mcp` (needs the ``mcp`` extra).
"""

from resource_server.budget import BudgetHook
from resource_server.context import NoTokenError, TokenInfo, current_token, record_usage
from resource_server.errors import InvalidToken, UpstreamUnavailable
from resource_server.hooks import CompositeHook, NoopHook, Refusal, TokenUseHook, UseContext, UseOutcome
from resource_server.metadata import metadata_document, metadata_url
from resource_server.middleware import ResourceServerMiddleware, TokenUser
from resource_server.scopes import McpCall, ScopePolicy
from resource_server.settings import Mode, ResourceServerConfig
from resource_server.usage import UsageReporter, record_outcome, record_tokens
from resource_server.verifier import TokenVerifier, build_verifier

__all__ = [
    "BudgetHook",
    "CompositeHook",
    "InvalidToken",
    "McpCall",
    "Mode",
    "NoTokenError",
    "NoopHook",
    "Refusal",
    "ResourceServerConfig",
    "ResourceServerMiddleware",
    "ScopePolicy",
    "TokenInfo",
    "TokenUseHook",
    "TokenUser",
    "TokenVerifier",
    "UpstreamUnavailable",
    "UsageReporter",
    "UseContext",
    "UseOutcome",
    "build_verifier",
    "current_token",
    "metadata_document",
    "metadata_url",
    "record_outcome",
    "record_tokens",
    "record_usage",
]
