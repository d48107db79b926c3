"""The token-use hook: budgets, rate limits and metering plug in here.

The middleware calls :meth:`TokenUseHook.before` on every authenticated, authorized request,
before the application sees it; a returned :class:`Refusal` is sent as the response (e.g. 429
with ``Retry-After`` and an RFC 9457 problem body when a hard budget is exhausted). After the
application finished (or failed), :meth:`TokenUseHook.after` receives the outcome: HTTP status,
duration, and the usage quantities tool code recorded with ``record_usage()``.

RFC 9457 §3: a problem details object has ``type`` (URI reference, default ``about:blank``),
``status``, ``title``, ``detail`` and ``instance`` members, served as ``application/problem+json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from resource_server.context import TokenInfo
from resource_server.errors import HttpResponse
from resource_server.scopes import McpCall

log = logging.getLogger(__name__)

__all__ = ["CompositeHook", "NoopHook", "Refusal", "TokenUseHook", "UseContext", "UseOutcome"]


@dataclass(frozen=True, slots=True)
class UseContext:
    """One use of a token: who, and which MCP operation(s)."""

    token: TokenInfo
    calls: tuple[McpCall, ...]
    http_method: str
    path: str
    required_scopes: frozenset[str]

    @property
    def method(self) -> str | None:
        """The MCP method of a single-message request (the first one of a batch)."""
        return self.calls[0].method if self.calls else None

    @property
    def tool(self) -> str | None:
        """The tool name of a ``tools/call`` (first message), else ``None``."""
        if self.calls and self.calls[0].method == "tools/call":
            return self.calls[0].name
        return None

    @property
    def request_id(self) -> str | int | None:
        return self.calls[0].request_id if self.calls else None


@dataclass(frozen=True, slots=True)
class UseOutcome:
    status: int | None  # None when the application failed before starting a response
    duration: float  # seconds, monotonic
    usage: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A response that replaces the application's, sent as is."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def problem(
        cls,
        status: int,
        title: str,
        *,
        detail: str | None = None,
        type_: str = "about:blank",
        retry_after: int | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Refusal:
        doc: dict[str, Any] = {"type": type_, "title": title, "status": status}
        if detail is not None:
            doc["detail"] = detail
        doc.update(extra or {})
        hdrs = [("content-type", "application/problem+json"), *headers]
        if retry_after is not None:
            hdrs.append(("retry-after", str(retry_after)))
        return cls(status, tuple(hdrs), json.dumps(doc).encode())

    def response(self) -> HttpResponse:
        return HttpResponse(self.status, self.headers, self.body)


class TokenUseHook(Protocol):
    async def before(self, ctx: UseContext) -> Refusal | None: ...

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None: ...


class NoopHook:
    async def before(self, ctx: UseContext) -> Refusal | None:
        return None

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        return None


class CompositeHook:
    """Several token-use hooks as one (e.g. budgets, then metering).

    ``before()`` runs the hooks in order and returns the first refusal (later hooks are not asked);
    an exception propagates (the middleware answers 503). ``after()`` runs every hook in order, even
    when one of them raises: each failure is logged and swallowed, so one broken hook never keeps
    the others from seeing the outcome. The middleware only calls ``after()`` for requests that
    every ``before()`` let through. ``NoopHook`` members are dropped.
    """

    def __init__(self, *hooks: TokenUseHook) -> None:
        self.hooks: tuple[TokenUseHook, ...] = tuple(h for h in hooks if type(h) is not NoopHook)

    async def before(self, ctx: UseContext) -> Refusal | None:
        for hook in self.hooks:
            refusal = await hook.before(ctx)
            if refusal is not None:
                return refusal
        return None

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        for hook in self.hooks:
            try:
                await hook.after(ctx, outcome)
            except Exception:
                log.exception("token-use hook %s after() failed", type(hook).__name__)
