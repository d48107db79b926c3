"""The metering event schema and its validation: precise per-event errors, valid events still land.

Wire shape (JSON object; unknown fields are refused so typos never pass silently)::

    {"id": "jti-7f3c:call:1",            # idempotency id, client-supplied, required (1-200 printable chars)
     "type": "tokens.consumed",          # tokens.consumed | call.completed | outcome.<name>
     "timestamp": "2026-12-01T10:00:00.123Z",   # RFC 3339 with offset; not older than the late window
     "agent": "agt_123",                 # required: who acted
     "team": "t1", "workflow": "wf", "customer": "acme",      # optional attribution
     "mcp_server": "https://mcp.example.com/mcp", "tool": "search",
     "provider": "anthropic", "model": "claude-sonnet-4-5",   # for pricing
     "usage": {"input_tokens": 1200, "output_tokens": 300,    # tokens.consumed only; input_tokens
               "cache_read_tokens": 1000, "cache_write_tokens": 0},  # INCLUDES the cache tokens
     "quantity": 1500, "unit": "tokens",  # defaults: tokens -> input+output; calls/outcomes -> 1
     "status": "ok", "latency_ms": 42,   # call.completed
     "metadata": {"k": "v"}}             # small JSON object (<= 2 KiB serialized)

The ``usage`` convention is genai-prices' (and OpenAI's): ``input_tokens`` is the whole prompt,
cached parts included; Anthropic-style reporters add their cache tokens to ``input_tokens``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TOKENS = "tokens.consumed"
CALL = "call.completed"
OUTCOME_RE = re.compile(r"outcome\.[a-z0-9_][a-z0-9_.\-]{0,62}")
ID_RE = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+\-]\d{2}:\d{2})")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
UNIT_RE = re.compile(r"[A-Za-z0-9_.\-/]{1,32}")
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
MAX_COUNT = 10**15  # far above any real count, far below int64
METADATA_MAX_BYTES = 2048
STRING_FIELDS: dict[str, int] = {
    "agent": 255,
    "team": 255,
    "workflow": 255,
    "customer": 255,
    "mcp_server": 2048,
    "tool": 255,
    "provider": 64,
    "model": 255,
    "status": 32,
}
FIELDS = frozenset({"id", "type", "timestamp", "usage", "quantity", "unit", "latency_ms", "metadata", *STRING_FIELDS})
DEFAULT_UNIT = {TOKENS: "tokens", CALL: "calls"}


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one event of a batch was refused: its index in the batch, the field path, a message."""

    index: int
    field: str
    message: str
    id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "field": self.field, "message": self.message}
        if self.id is not None:
            d["id"] = self.id
        return d


@dataclass(slots=True)
class Event:
    """A validated event. Dimension strings are never None (absent = "")."""

    id: str
    type: str
    occurred_at_ms: int
    agent: str
    team: str = ""
    workflow: str = ""
    customer: str = ""
    mcp_server: str = ""
    tool: str = ""
    provider: str = ""
    model: str = ""
    unit: str = ""
    quantity: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    status: str | None = None
    latency_ms: int | None = None
    metadata: dict[str, Any] | None = field(default=None)

    def to_json(self) -> str:
        """Canonical compact JSON for the buffer (field names as in :class:`Event`)."""
        return json.dumps(
            [
                self.id,
                self.type,
                self.occurred_at_ms,
                self.agent,
                self.team,
                self.workflow,
                self.customer,
                self.mcp_server,
                self.tool,
                self.provider,
                self.model,
                self.unit,
                self.quantity,
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens,
                self.cache_write_tokens,
                self.status,
                self.latency_ms,
                self.metadata,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        return cls(*json.loads(text))


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(name, "must be an integer")
    if value < 0:
        raise _Invalid(name, "must not be negative")
    if value > MAX_COUNT:
        raise _Invalid(name, f"must be at most {MAX_COUNT}")
    return value


def _string(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(name, "must be a string")
    limit = STRING_FIELDS[name]
    if len(value) > limit:
        raise _Invalid(name, f"must be at most {limit} characters")
    if CONTROL_RE.search(value):
        raise _Invalid(name, "must not contain control characters")
    return value


def parse_timestamp(value: object) -> int:
    """RFC 3339 (an explicit offset is required) -> Unix milliseconds."""
    if not isinstance(value, str) or not RFC3339_RE.fullmatch(value):
        raise _Invalid("timestamp", "must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:00:00Z")
    text = value.upper().replace(" ", "T")
    if "." in text:  # fromisoformat takes at most 6 fractional digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{tail[digits.end() :]}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Invalid("timestamp", f"is not a valid date-time: {exc}") from None
    return int(dt.timestamp() * 1000)


def _validate(raw: object, now_ms: int, late_window_ms: int, max_future_ms: int) -> Event:
    if not isinstance(raw, Mapping):
        raise _Invalid("", "an event must be a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise _Invalid(str(unknown[0]), "unknown field")
    eid = raw.get("id")
    if not isinstance(eid, str) or not ID_RE.fullmatch(eid):
        raise _Invalid("id", "required: 1-200 printable ASCII characters without spaces")
    etype = raw.get("type")
    if not isinstance(etype, str) or not (etype in (TOKENS, CALL) or OUTCOME_RE.fullmatch(etype)):
        raise _Invalid("type", "must be tokens.consumed, call.completed or outcome.<name> ([a-z0-9_.-], <= 64)")
    ts = parse_timestamp(raw.get("timestamp"))
    if ts > now_ms + max_future_ms:
        raise _Invalid("timestamp", f"is more than {max_future_ms // 1000} s in the future")
    if ts < now_ms - late_window_ms:
        raise _Invalid("timestamp", f"is older than the late-event window ({late_window_ms // 1000} s)")
    strings = {name: _string(raw, name) for name in STRING_FIELDS}
    if not strings["agent"]:
        raise _Invalid("agent", "required")
    mcp = strings["mcp_server"]
    if mcp and not re.match(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+\Z", mcp):
        raise _Invalid("mcp_server", "must be an absolute URI (the resource's RFC 8707 identifier)")
    tokens = dict.fromkeys(USAGE_FIELDS, 0)
    usage = raw.get("usage")
    if etype == TOKENS:
        if not isinstance(usage, Mapping):
            raise _Invalid("usage", "required for tokens.consumed: an object of token counts")
        bad = sorted(set(usage) - set(USAGE_FIELDS))
        if bad:
            raise _Invalid(f"usage.{bad[0]}", f"unknown token count (known: {', '.join(USAGE_FIELDS)})")
        for name in ("input_tokens", "output_tokens"):
            if name not in usage:
                raise _Invalid(f"usage.{name}", "required")
        for name in USAGE_FIELDS:
            tokens[name] = _count(usage.get(name, 0), f"usage.{name}")
        if tokens["cache_read_tokens"] + tokens["cache_write_tokens"] > tokens["input_tokens"]:
            raise _Invalid("usage.input_tokens", "must include cache_read_tokens and cache_write_tokens")
        if not strings["model"]:
            raise _Invalid("model", "required for tokens.consumed")
    elif usage is not None:
        raise _Invalid("usage", "only tokens.consumed events carry token usage")
    default_quantity = tokens["input_tokens"] + tokens["output_tokens"] if etype == TOKENS else 1
    quantity = default_quantity if raw.get("quantity") is None else _count(raw["quantity"], "quantity")
    if etype == TOKENS and quantity != default_quantity:
        raise _Invalid("quantity", "for tokens.consumed it is input_tokens + output_tokens (omit it)")
    unit = raw.get("unit")
    default_unit = DEFAULT_UNIT.get(etype, "count")
    if unit is None:
        unit = default_unit
    elif not isinstance(unit, str) or not UNIT_RE.fullmatch(unit):
        raise _Invalid("unit", "must be 1-32 characters of [A-Za-z0-9_.-/]")
    if etype in DEFAULT_UNIT and unit != default_unit:
        raise _Invalid("unit", f"must be {default_unit!r} for {etype}")
    latency = raw.get("latency_ms")
    latency_ms = None if latency is None else _count(latency, "latency_ms")
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise _Invalid("metadata", "must be a JSON object")
        try:
            size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError):
            raise _Invalid("metadata", "must be JSON-serialisable") from None
        if size > METADATA_MAX_BYTES:
            raise _Invalid("metadata", f"is {size} bytes serialized; the limit is {METADATA_MAX_BYTES}")
        metadata = dict(metadata)
    return Event(
        id=eid,
        type=etype,
        occurred_at_ms=ts,
        agent=strings["agent"],
        team=strings["team"],
        workflow=strings["workflow"],
        customer=strings["customer"],
        mcp_server=mcp,
        tool=strings["tool"],
        provider=strings["provider"].lower(),
        model=strings["model"],
        unit=unit,
        quantity=quantity,
        status=strings["status"] or None,
        latency_ms=latency_ms,
        metadata=metadata,
        **tokens,
    )


def validate_batch(
    raw_events: list[Any], now_ms: int, late_window_ms: int, max_future_ms: int
) -> tuple[list[Event], list[FieldError]]:
    """Validate each event on its own: the valid ones, and one precise error per invalid one."""
    events: list[Event] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_events):
        try:
            events.append(_validate(raw, now_ms, late_window_ms, max_future_ms))
        except _Invalid as exc:
            eid = raw.get("id") if isinstance(raw, Mapping) else None
            errors.append(FieldError(index, exc.field, exc.message, eid if isinstance(eid, str) else None))
    return events, errors
