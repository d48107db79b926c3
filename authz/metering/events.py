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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
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
MCP_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+\Z")
DIGITS_RE = re.compile(r"\d+")
USAGE_KEYS = frozenset(USAGE_FIELDS)
_STRING_ITEMS = tuple(STRING_FIELDS.items())
# One encoder for every payload: ``json.dumps`` with non-default options builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# The same output for validated payloads (acyclic, JSON types only) from a C encoder built once
# (JSONEncoder.encode builds one per call, as costly as the encoding itself). None without _json.
_C = getattr(json.encoder, "c_make_encoder", None)
_PAYLOAD_ENCODER = _C and _C(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True)
# The buffered payload is a JSON array in this order (the names are Event's and the event table's).
PAYLOAD = (
    "id",
    "type",
    "occurred_at_ms",
    "agent",
    "team",
    "workflow",
    "customer",
    "mcp_server",
    "tool",
    "provider",
    "model",
    "unit",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "status",
    "latency_ms",
    "metadata",
)


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
        """Canonical compact JSON for the buffer: the values in :data:`PAYLOAD` order."""
        return _ENCODE(
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
            ]
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
    if type(value) is str:
        return _timestamp_ms(value)  # a batch's events share a few timestamps: parsed once each
    return _parse_timestamp(value)


_timestamp_ms = lru_cache(maxsize=4096)(lambda value: _parse_timestamp(value))


def _parse_timestamp(value: object) -> int:
    match = RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _Invalid("timestamp", "must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:00:00Z")
    text = match.string.upper().replace(" ", "T")
    fraction = match.group(1)
    if fraction is not None and len(fraction) > 7:  # fromisoformat is only sure to take 1-6 digits: truncate
        head, _, tail = text.partition(".")
        digits = DIGITS_RE.match(tail)
        assert digits is not None
        text = f"{head}.{digits.group()[:6]}{tail[digits.end() :]}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Invalid("timestamp", f"is not a valid date-time: {exc}") from None
    return int(dt.timestamp() * 1000)


def _strings(raw: Mapping[str, Any]) -> list[str]:
    """The string fields in :data:`STRING_FIELDS` order, absent = "".

    The common case (a short printable ``str``) is decided without a regex; anything else goes
    through :func:`_string`, which raises the precise error (checks and messages are its own).
    """
    out: list[str] = []
    for name, limit in _STRING_ITEMS:
        value = raw.get(name)
        if value is None:
            out.append("")
        elif type(value) is str and len(value) <= limit and (value.isprintable() or not CONTROL_RE.search(value)):
            out.append(value)
        else:
            out.append(_string(raw, name))
    return out


def _usage(usage: object) -> list[int]:
    """Token counts of a ``tokens.consumed`` event in :data:`USAGE_FIELDS` order."""
    if not isinstance(usage, Mapping):
        raise _Invalid("usage", "required for tokens.consumed: an object of token counts")
    if not usage.keys() <= USAGE_KEYS:
        bad = sorted(set(usage) - USAGE_KEYS)
        raise _Invalid(f"usage.{bad[0]}", f"unknown token count (known: {', '.join(USAGE_FIELDS)})")
    for name in ("input_tokens", "output_tokens"):
        if name not in usage:
            raise _Invalid(f"usage.{name}", "required")
    counts = []
    for name in USAGE_FIELDS:
        value = usage.get(name, 0)
        counts.append(value if type(value) is int and 0 <= value <= MAX_COUNT else _count(value, f"usage.{name}"))
    if counts[2] + counts[3] > counts[0]:
        raise _Invalid("usage.input_tokens", "must include cache_read_tokens and cache_write_tokens")
    return counts


def _validate(raw: object, now_ms: int, late_window_ms: int, max_future_ms: int) -> list[Any]:
    # The checks run in a fixed order: the first failing one names the field (tests pin the order).
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise _Invalid("", "an event must be a JSON object")
    if not raw.keys() <= FIELDS:
        raise _Invalid(str(sorted(set(raw) - FIELDS)[0]), "unknown field")
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
    agent, team, workflow, customer, mcp, tool, provider, model, status = _strings(raw)
    if not agent:
        raise _Invalid("agent", "required")
    if mcp and not MCP_RE.match(mcp):
        raise _Invalid("mcp_server", "must be an absolute URI (the resource's RFC 8707 identifier)")
    usage = raw.get("usage")
    raw_quantity = raw.get("quantity")
    if etype == TOKENS and usage is None and raw_quantity is not None:
        tokens = [0, 0, 0, 0]  # a total without an input/output split: priced only if both rates agree
        default_quantity = _count(raw_quantity, "quantity")
        if not model:
            raise _Invalid("model", "required for tokens.consumed")
    elif etype == TOKENS:
        tokens = _usage(usage)
        if not model:
            raise _Invalid("model", "required for tokens.consumed")
        default_quantity = tokens[0] + tokens[1]
    elif usage is not None:
        raise _Invalid("usage", "only tokens.consumed events carry token usage")
    else:
        tokens = [0, 0, 0, 0]
        default_quantity = 1
    if raw_quantity is None:
        quantity = default_quantity
    elif etype not in (TOKENS, CALL) and type(raw_quantity) is int and raw_quantity < 0:
        meta = raw.get("metadata")
        if not isinstance(meta, Mapping) or not isinstance(meta.get("reverses"), str):
            raise _Invalid(
                "quantity", "a negative outcome is a reversal: metadata.reverses names the outcome it undoes"
            )
        quantity = -_count(-raw_quantity, "quantity")
    else:
        quantity = _count(raw_quantity, "quantity")
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
            size = len(_ENCODE(metadata).encode())
        except (TypeError, ValueError):
            raise _Invalid("metadata", "must be JSON-serialisable") from None
        if size > METADATA_MAX_BYTES:
            raise _Invalid("metadata", f"is {size} bytes serialized; the limit is {METADATA_MAX_BYTES}")
        metadata = dict(metadata)
    # The payload itself (PAYLOAD order): the hot path never builds an Event (see validate_payloads).
    return [
        eid,
        etype,
        ts,
        agent,
        team,
        workflow,
        customer,
        mcp,
        tool,
        provider.lower(),
        model,
        unit,
        quantity,
        tokens[0],
        tokens[1],
        tokens[2],
        tokens[3],
        status or None,
        latency_ms,
        metadata,
    ]


# Who an event is billed to: (agent, customer as sent) -> (customer, or an error about that field).
Attribute = Callable[[str, str], tuple[str, str | None]]
AGENT_AT, CUSTOMER_AT = PAYLOAD.index("agent"), PAYLOAD.index("customer")


def validate_payloads(
    raw_events: list[Any], now_ms: int, late_window_ms: int, max_future_ms: int, attribute: Attribute | None = None
) -> tuple[list[list[Any]], list[FieldError]]:
    """Validate each event on its own: the valid ones as payload lists (:data:`PAYLOAD` order, see
    :func:`encode_payload`), and one precise error per invalid one. ``attribute`` (billing) fills an
    absent ``customer`` from the agent and refuses an unknown one."""
    payloads: list[list[Any]] = []
    errors: list[FieldError] = []
    billed: dict[tuple[str, str], tuple[str, str | None]] = {}  # a batch names few (agent, customer) pairs
    for index, raw in enumerate(raw_events):
        try:
            payload = _validate(raw, now_ms, late_window_ms, max_future_ms)
            if attribute is not None:
                who = (payload[AGENT_AT], payload[CUSTOMER_AT])
                answer = billed.get(who)
                if answer is None:
                    answer = billed[who] = attribute(*who)
                customer, problem = answer
                if problem is not None:
                    raise _Invalid("customer", problem)
                payload[CUSTOMER_AT] = customer
            payloads.append(payload)
        except _Invalid as exc:
            eid = raw.get("id") if isinstance(raw, Mapping) else None
            errors.append(FieldError(index, exc.field, exc.message, eid if isinstance(eid, str) else None))
    return payloads, errors


def encode_payload(payload: list[Any]) -> str:
    """A validated payload as the canonical compact JSON the buffers store (same as Event.to_json)."""
    return _ENCODE(payload) if _PAYLOAD_ENCODER is None else "".join(_PAYLOAD_ENCODER(payload, 0))


def validate_batch(
    raw_events: list[Any], now_ms: int, late_window_ms: int, max_future_ms: int
) -> tuple[list[Event], list[FieldError]]:
    """Validate each event on its own: the valid ones, and one precise error per invalid one."""
    payloads, errors = validate_payloads(raw_events, now_ms, late_window_ms, max_future_ms)
    return [Event(*p) for p in payloads], errors
