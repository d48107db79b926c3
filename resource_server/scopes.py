"""Per-operation scopes for MCP requests, with a scope hierarchy.

MCP authorization 2026-07-28, scope challenges: the server names the scopes *the current
operation* needs, and "servers MUST account for scope hierarchies": a broader scope implies
narrower ones. :class:`ScopePolicy.implies` states that hierarchy explicitly (its closure is
transitive), e.g. ``{"tools:admin": ("tools:write",), "tools:write": ("tools:read",)}``.

The JSON-RPC body of a POST (one message or a batch) decides the operation; for a batch the
required scopes are the union over its messages. The ``Mcp-Method`` / ``Mcp-Name`` request
headers (MCP 2026-07-28 transport, SEP-2243) are only trusted when they agree with the body.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from guard.jsonload import JsonRefused, load_json
from resource_server.errors import InvalidRequest

__all__ = ["McpCall", "ScopePolicy", "check_routing_headers", "parse_calls"]

RPC_MAX_DEPTH = 64  # nesting of arrays and objects in a JSON-RPC message (tool arguments included)

_CLOSURE_CACHE_MAX = 1024

# The params member naming the target of each method (the Mcp-Name header carries it).
_NAME_PARAM = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "resources/subscribe": "uri",
    "resources/unsubscribe": "uri",
}


@dataclass(frozen=True, slots=True)
class McpCall:
    """One JSON-RPC message of an MCP request body."""

    method: str | None
    name: str | None = None
    request_id: str | int | None = None
    # ``params.arguments`` of a ``tools/call`` as parsed here (hooks that bind a decision to the
    # arguments read it instead of parsing the body again); not part of equality or hashing.
    arguments: Any = field(default=None, compare=False, hash=False)


def _frozen(mapping: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({k: frozenset(v) for k, v in mapping.items()})


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """Which scopes each MCP operation needs.

    Resolution per message, most specific first: ``tools`` (``tools/call`` by tool name),
    ``resources`` (``resources/read`` by URI), ``prompts`` (``prompts/get`` by name), then
    ``methods`` (by JSON-RPC method), then ``default``. Non-POST requests (GET for the SSE
    stream, DELETE) and bodies that are not JSON-RPC need ``default``.
    """

    default: frozenset[str] = frozenset()
    methods: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    tools: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    resources: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    prompts: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    implies: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    # effective() of recently seen granted sets (the policy is immutable, so entries never go stale)
    _closure: dict[frozenset[str], frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def build(
        cls,
        *,
        default: Iterable[str] = (),
        methods: Mapping[str, Iterable[str]] | None = None,
        tools: Mapping[str, Iterable[str]] | None = None,
        resources: Mapping[str, Iterable[str]] | None = None,
        prompts: Mapping[str, Iterable[str]] | None = None,
        implies: Mapping[str, Iterable[str]] | None = None,
    ) -> ScopePolicy:
        return cls(
            default=frozenset(default),
            methods=_frozen(methods or {}),
            tools=_frozen(tools or {}),
            resources=_frozen(resources or {}),
            prompts=_frozen(prompts or {}),
            implies=_frozen(implies or {}),
        )

    def all_scopes(self) -> frozenset[str]:
        """Every scope the policy names (a default for PRM ``scopes_supported``)."""
        out = set(self.default)
        for table in (self.methods, self.tools, self.resources, self.prompts, self.implies):
            for scopes in table.values():
                out |= scopes
        out |= set(self.implies)
        return frozenset(out)

    def for_call(self, call: McpCall) -> frozenset[str]:
        method = call.method
        table = (
            self.tools if method == "tools/call"
            else self.resources if method == "resources/read"
            else self.prompts if method == "prompts/get"
            else None
        )  # fmt: skip
        if table is not None and call.name is not None and call.name in table:
            return table[call.name]
        if call.method is not None and call.method in self.methods:
            return self.methods[call.method]
        return self.default

    def required(self, calls: Sequence[McpCall]) -> frozenset[str]:
        """The union over a batch; ``default`` when there is no JSON-RPC message."""
        if not calls:
            return self.default
        if len(calls) == 1:  # one message (the common case): its scopes as they are, no copy
            return self.for_call(calls[0])
        out: set[str] = set()
        for call in calls:
            out |= self.for_call(call)
        return frozenset(out)

    def effective(self, granted: Iterable[str]) -> frozenset[str]:
        """Granted scopes plus everything they imply, transitively."""
        seen: set[str] = set()
        stack = list(granted)
        while stack:
            scope = stack.pop()
            if scope not in seen:
                seen.add(scope)
                stack.extend(self.implies.get(scope, ()))
        return frozenset(seen)

    def _effective_cached(self, granted: frozenset[str]) -> frozenset[str]:
        closure = self._closure.get(granted)
        if closure is None:
            closure = self.effective(granted)
            if len(self._closure) >= _CLOSURE_CACHE_MAX:
                self._closure.clear()
            self._closure[granted] = closure
        return closure

    def missing(self, granted: Iterable[str], required: Iterable[str]) -> frozenset[str]:
        effective = self._effective_cached(granted) if isinstance(granted, frozenset) else self.effective(granted)
        return frozenset(required) - effective

    def satisfied_by(self, granted: frozenset[str], required: frozenset[str]) -> bool:
        """``required`` is covered by ``granted`` and what it implies (``not missing(...)``, cached)."""
        return required <= self._effective_cached(granted)


def parse_calls(body: bytes) -> tuple[McpCall, ...]:
    """The JSON-RPC messages of a body; empty when it is not JSON-RPC (the app will reject it).

    Raises :class:`~guard.jsonload.JsonRefused` (``too_deep``) for JSON nested beyond
    :data:`RPC_MAX_DEPTH`: the middleware answers a JSON-RPC parse error.
    """
    try:
        data = load_json(body, max_bytes=len(body), max_depth=RPC_MAX_DEPTH)
    except JsonRefused as exc:
        if exc.reason == "too_deep":
            raise
        return ()
    messages = data if isinstance(data, list) else [data]
    calls: list[McpCall] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        method = message.get("method")
        if not isinstance(method, str):
            # A response from the client (to a server request): no operation of its own.
            continue
        params = message.get("params")
        name: str | None = None
        key = _NAME_PARAM.get(method)
        if key is not None and isinstance(params, dict) and isinstance(params.get(key), str):
            name = params[key]
        rid = message.get("id")
        request_id = rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None
        arguments = params.get("arguments") if method == "tools/call" and isinstance(params, dict) else None
        calls.append(McpCall(method=method, name=name, request_id=request_id, arguments=arguments))
    return tuple(calls)


_B64_SENTINEL = re.compile(r"=\?base64\?(?P<payload>.*)\?=")


def decode_header_value(value: str | None) -> str | None:
    """An ``Mcp-Name`` value as the body would spell it (SEP-2243).

    Surrounding whitespace is not part of a field value (RFC 9110 §5.5); a value wrapped as
    ``=?base64?<payload>?=`` carries UTF-8 in canonical base64. A malformed wrapper gives ``None``,
    which never matches a body value.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    match = _B64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match["payload"]
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_routing_headers(mcp_method: str | None, mcp_name: str | None, calls: Sequence[McpCall]) -> None:
    """``Mcp-Method``/``Mcp-Name`` must describe the body exactly, or the request is refused.

    A proxy may route (or a policy may decide) on these headers, so a disagreement with the body
    the server will actually execute is an attack surface: it is answered 400 with the JSON-RPC
    error MCP defines for it (``-32020`` HeaderMismatch). Values are compared after trimming
    surrounding whitespace and decoding the SEP-2243 base64 form.
    """
    if mcp_method is None and mcp_name is None:
        return
    if mcp_method is not None:
        mcp_method = mcp_method.strip(" \t")
    if mcp_name is not None:
        mcp_name = decode_header_value(mcp_name)
        if mcp_name is None:
            raise InvalidRequest("Mcp-Name header is not a valid encoded value")
    if len(calls) != 1:
        raise InvalidRequest("Mcp-Method/Mcp-Name headers require a single JSON-RPC message")
    call = calls[0]
    if mcp_method is not None and mcp_method != call.method:
        raise InvalidRequest("Mcp-Method header does not match the request body")
    if mcp_name is not None and mcp_name != call.name:
        raise InvalidRequest("Mcp-Name header does not match the request body")
    if mcp_method is None and mcp_name is not None:
        raise InvalidRequest("Mcp-Name header without Mcp-Method")
