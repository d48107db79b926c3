"""``POST /metering/events`` (report usage events) and ``GET /metering/usage`` (usage and cost).

Thin adapters over :class:`authz.metering.MeteringService` (``ctx.metering``): ``ingest`` validates
each event, durably stores the valid ones (SQL staging commit or the Redis Stream append) and only
then returns, so a 200 means "stored"; ``usage`` reads the rollups. Mounted by adding
``*metering.OPERATIONS`` to :data:`authz.admin.routes.OPERATIONS`.

Request bodies go through :mod:`authz.admin.api`; this route raises its body limit to 2 MiB (the
admin API's default is 64 KiB), enough for a full batch of ``max_batch`` (1,000) events. Larger
bodies get 413, as more than 1,000 events do.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, TypeAdapter, WithJsonSchema, model_serializer

from authz.admin.api import Call, Operation, QueryParam
from authz.admin.problems import ApiProblem
from authz.metering import GRANULARITIES, GROUPS, BatchTooLarge, MeteringService, UsageQueryError
from authz.metering.aliases import native
from authz.metering.events import FIELDS, ID_RE

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One usage event (see docs/metering.md). Unknown fields are refused.",
    "required": ["id", "type", "timestamp", "agent"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Idempotency id."},
        "type": {"type": "string", "description": "tokens.consumed, call.completed or outcome.<name>."},
        "timestamp": {"type": "string", "format": "date-time"},
        **{
            name: {"type": "string"}
            for name in sorted(FIELDS - {"id", "type", "timestamp", "usage", "quantity", "latency_ms", "metadata"})
        },
        "usage": {
            "type": "object",
            "properties": {
                k: {"type": "integer", "minimum": 0}
                for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
            },
        },
        "quantity": {"type": "number", "minimum": 0},
        "latency_ms": {"type": "number", "minimum": 0},
        "metadata": {"type": "object"},
    },
}
_BODY_SCHEMA: dict[str, Any] = {
    "description": "One event, or a batch of up to 1,000 events.",
    "oneOf": [
        _EVENT_SCHEMA,
        {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {"events": {"type": "array", "maxItems": 1000, "items": _EVENT_SCHEMA}},
        },
    ],
}
EventsBody: TypeAdapter[dict[str, Any]] = TypeAdapter(
    Annotated[dict[str, Any], WithJsonSchema(_BODY_SCHEMA, mode="validation")]
)


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the batch (0 for a single event).")
    field: str = Field(description="The offending field (dotted path), or `event`.")
    message: str
    id: str | None = Field(None, description="The event's id, when it had a usable one.")


class IngestOut(BaseModel):
    accepted: int = Field(description="Events stored now (each counted once).")
    duplicates: list[str] = Field(
        description="Ids already stored before (or repeated in this batch): not counted again."
    )
    rejected: list[Rejection] = Field(description="Invalid events (nothing stored for them); the others were stored.")
    id: str | None = Field(
        None,
        description="A single event's id (the Idempotency-Key header or a new id when the "
        "event had none); absent for batches.",
    )

    @model_serializer(mode="wrap")
    def _without_null_id(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("id") is None:
            data.pop("id", None)
        return data


class UsageOut(BaseModel):
    start: datetime = Field(description="Start of the range (hour resolution: floored to its hour).")
    end: datetime = Field(description="End of the range (exclusive).")
    granularity: str
    group_by: list[str]
    rows: list[dict[str, Any]] = Field(
        description="One row per period and group: `period`, the group-by dimensions, `count`, `quantity`, token "
        "sums, `latency_ms`, `cost_usd` (exact decimal text, null when nothing was priced), `cost_pusd` "
        "(1e-12 USD), `priced`, `unpriced`."
    )


def service(call: Call) -> MeteringService:
    svc = call.ctx.metering
    if svc is None:
        raise ApiProblem(503, "Metering is not configured on this server.")
    return svc


def report_events(call: Call) -> tuple[int, IngestOut]:
    body: dict[str, Any] = call.body
    now_ms = int(time.time() * 1000)
    key = call.headers.get("idempotency-key")
    single = "events" not in body
    if not single:
        if set(body) != {"events"} or not isinstance(body["events"], list):
            raise ApiProblem(
                422,
                "A batch is an object with only an `events` array.",
                errors=[("events", "must be the only member, an array of events")],
            )
        events: list[Any] = [native(e, now_ms)[0] for e in body["events"]]
        assigned = None
    else:
        if key is not None and not ID_RE.fullmatch(key):
            raise ApiProblem(
                422,
                "Idempotency-Key must be 1-200 printable characters.",
                errors=[("header.Idempotency-Key", "invalid")],
            )
        event, assigned = native(body, now_ms, key)
        events = [event]
    svc = service(call)
    if len(events) > svc.config.max_batch:
        raise ApiProblem(413, f"At most {svc.config.max_batch} events per request, got {len(events)}.")
    try:
        result = svc.ingest(events)
    except BatchTooLarge as exc:
        raise ApiProblem(413, str(exc)) from exc
    if single and result.rejected and any(e.field == "customer" for e in result.rejected):
        raise ApiProblem(
            422,
            "The event names an unknown customer; nothing was stored.",
            errors=[(e.field, e.message) for e in result.rejected],
        )
    out = IngestOut.model_validate(result.as_dict())
    out.id = assigned  # only when the event came without an id
    return 200, out


def _when(call: Call, name: str, default: datetime) -> datetime:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+") if "T" in raw else raw)
    except ValueError:
        raise ApiProblem(
            422, f"`{name}` is not a date or an RFC 3339 date-time.", errors=[(f"query.{name}", "invalid")]
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _list(call: Call, name: str) -> list[str]:
    return [v.strip() for raw in call.query.getlist(name) for v in raw.split(",") if v.strip()]


def get_usage(call: Call) -> tuple[int, UsageOut]:
    end = _when(call, "to", datetime.now(UTC))
    start = _when(call, "from", end - timedelta(days=1))
    granularity = call.query.get("granularity") or "hour"
    group_by = _list(call, "group_by")
    filters: dict[str, list[str]] = {}
    for item in call.query.getlist("filter"):
        name, sep, value = item.partition("=")
        if not sep or name not in GROUPS:
            raise ApiProblem(
                422,
                f"`filter` is DIMENSION=VALUE with DIMENSION in {', '.join(GROUPS)}.",
                errors=[("query.filter", f"invalid: {item!r}")],
            )
        filters.setdefault(name, []).append(value)
    try:
        rows = service(call).usage(start, end, granularity, group_by, filters)
    except UsageQueryError as exc:
        raise ApiProblem(422, str(exc), errors=[("query", str(exc))]) from exc
    return 200, UsageOut(start=start, end=end, granularity=granularity, group_by=group_by, rows=rows)


USAGE_QUERY = (
    QueryParam("from", {"type": "string"}, "Start: a date or an RFC 3339 date-time (default: 24 h before `to`)."),
    QueryParam("to", {"type": "string"}, "End, exclusive (default: now)."),
    QueryParam("granularity", {"type": "string", "enum": list(GRANULARITIES), "default": "hour"}, "Period size."),
    QueryParam("group_by", {"type": "string"}, f"Comma-separated dimensions: {', '.join(GROUPS)}."),
    QueryParam("filter", {"type": "string"}, "DIMENSION=VALUE; repeatable (values of one dimension are ORed)."),
)

OPERATIONS = [
    Operation("POST", "/metering/events", report_events, "metering:write",
              "Report usage events (one or up to 1,000); acknowledged after the durable write", IngestOut, 200,
              EventsBody, errors=(413, 422), max_body=2 * 1024 * 1024),
    Operation("GET", "/metering/usage", get_usage, "metering:read", "Usage and cost per period, grouped",
              UsageOut, query=USAGE_QUERY, errors=(422,)),
]  # fmt: skip
