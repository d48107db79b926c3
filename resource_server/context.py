"""Request-scoped identity for tool code: who called, for whom, through which agent.

The middleware binds a :class:`RequestContext` to a context variable for the duration of each
authenticated request; tool code reads it with :func:`current_token` and may record usage
quantities with :func:`record_usage` for the token-use hook's ``after()`` call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "NoTokenError",
    "RequestContext",
    "TokenInfo",
    "bind_request_context",
    "current_request_context",
    "current_token",
    "record_usage",
]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A validated access token's facts. Never holds the raw token."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issuer: str | None
    expires_at: int | None
    jti: str | None = None
    agent: str | None = None
    team: str | None = None
    workflow: str | None = None
    act: Mapping[str, Any] | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> TokenInfo:
        """Build from JWT claims or an RFC 7662 introspection response (same member names)."""
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
        scope = claims.get("scope")
        act = claims.get("act")
        exp = claims.get("exp")
        return cls(
            subject=_str(claims.get("sub")),
            client_id=_str(claims.get("client_id")),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            audience=audience,
            issuer=_str(claims.get("iss")),
            expires_at=int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
            jti=_str(claims.get("jti")),
            agent=_str(claims.get("agent")),
            team=_str(claims.get("team")),
            workflow=_str(claims.get("workflow")),
            act=MappingProxyType(dict(act)) if isinstance(act, Mapping) else None,
            claims=MappingProxyType(dict(claims)),
        )

    def actors(self) -> tuple[str, ...]:
        """The delegation chain from the nested ``act`` claim (RFC 8693 §4.1), nearest actor first."""
        chain: list[str] = []
        act: Any = self.act
        while isinstance(act, Mapping) and isinstance(act.get("sub"), str):
            chain.append(act["sub"])
            act = act.get("act")
        return tuple(chain)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class RequestContext:
    """What the middleware knows about the current authenticated request."""

    token: TokenInfo
    usage: dict[str, float] = field(default_factory=dict)


class NoTokenError(LookupError):
    """Raised by :func:`current_token` outside an authenticated request."""


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "resource_server_request", default=None
)


def current_request_context() -> RequestContext | None:
    return _current.get()


def current_token() -> TokenInfo:
    """The validated token of the request being served (inside tools, resources, prompts)."""
    ctx = _current.get()
    if ctx is None:
        raise NoTokenError("no authenticated request in this context")
    return ctx.token


def record_usage(**quantities: float) -> None:
    """Add usage quantities (e.g. ``tokens_in=120``) that the hook's ``after()`` receives."""
    ctx = _current.get()
    if ctx is None:
        raise NoTokenError("no authenticated request in this context")
    for name, amount in quantities.items():
        ctx.usage[name] = ctx.usage.get(name, 0.0) + amount


def enter_request_context(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    """Bind ``ctx`` for the current task (the middleware's hot path; pair with :func:`exit_request_context`)."""
    return _current.set(ctx)


def exit_request_context(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)


@contextmanager
def bind_request_context(ctx: RequestContext) -> Iterator[RequestContext]:
    reset = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(reset)
