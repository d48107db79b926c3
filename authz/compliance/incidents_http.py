"""``/api/v1/incidents``: serious-incident records (AI Act Art. 73) with the reporting deadline.

``GET|POST /incidents``, ``GET|PATCH /incidents/{incident_id}``, ``POST /incidents/{incident_id}/close``
(``admin:read`` / ``admin:write``). Answers carry ``deadline``, ``reporting_days``, ``seconds_left``
(null once reported) and ``overdue``. A bad field is a 422 problem naming it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from authz.admin.api import Call, Operation, QueryParam
from authz.compliance import incidents

READ, WRITE = "admin:read", "admin:write"
Kind = Literal["serious", "death", "widespread", "critical-infrastructure"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentIn(_In):
    title: str = Field(max_length=255)
    kind: Kind = Field("serious", description="The reporting clock: 15, 10 (death) or 2 days (Art. 73(2)-(4)).")
    agents: list[str] = Field(default_factory=list, max_length=100)
    seq_from: int | None = Field(None, description="First audit record concerned (authz audit export --from-seq).")
    seq_to: int | None = None
    description: str = Field("", max_length=20_000)
    aware_at: int | None = Field(None, description="Unix time the organisation became aware (default: now).")


class IncidentPatch(_In):
    title: str | None = Field(None, max_length=255)
    kind: Kind | None = None
    agents: list[str] | None = Field(None, max_length=100)
    seq_from: int | None = None
    seq_to: int | None = None
    description: str | None = Field(None, max_length=20_000)
    aware_at: int | None = None
    reported_at: int | None = Field(None, description="Unix time the report reached the authority (stops the clock).")


class CloseIn(_In):
    resolution: str | None = Field(None, max_length=255)


class IncidentOut(BaseModel):
    id: str
    title: str
    kind: str
    status: str
    agents: list[str]
    seq_from: int | None
    seq_to: int | None
    description: str
    aware_at: int
    deadline: int
    reporting_days: int
    reported_at: int | None
    seconds_left: int | None
    overdue: bool
    opened_at: int
    opened_by: str
    updated_at: int
    closed_at: int | None


class Incidents(BaseModel):
    incidents: list[IncidentOut]


def list_incidents_op(call: Call) -> tuple[int, Incidents]:
    rows = incidents.list_incidents(call.ctx, call.query.get("status"))
    return 200, Incidents(incidents=[IncidentOut(**r) for r in rows])


def open_incident_op(call: Call) -> tuple[int, IncidentOut]:
    b: IncidentIn = call.body
    row = incidents.open_incident(call.ctx, **b.model_dump(), actor=call.actor)
    return 201, IncidentOut(**row)


def get_incident_op(call: Call) -> tuple[int, IncidentOut]:
    return 200, IncidentOut(**incidents.get_incident(call.ctx, call.path["incident_id"]))


def update_incident_op(call: Call) -> tuple[int, IncidentOut]:
    changes = call.body.model_dump(exclude_unset=True)
    row = incidents.update_incident(call.ctx, call.path["incident_id"], changes, actor=call.actor)
    return 200, IncidentOut(**row)


def close_incident_op(call: Call) -> tuple[int, IncidentOut]:
    resolution = call.body.resolution if isinstance(call.body, CloseIn) else None
    row = incidents.close_incident(call.ctx, call.path["incident_id"], actor=call.actor, resolution=resolution)
    return 200, IncidentOut(**row)


ONE = "/incidents/{incident_id}"
OPERATIONS = [
    Operation("GET", "/incidents", list_incidents_op, READ, "Incidents, earliest deadline first", Incidents,
              query=(QueryParam("status", {"type": "string", "enum": ["open", "closed"]}, "Only these."),)),
    Operation("POST", "/incidents", open_incident_op, WRITE, "Open a serious-incident record (AI Act Art. 73)",
              IncidentOut, status=201, body=IncidentIn, errors=(422,)),
    Operation("GET", ONE, get_incident_op, READ, "An incident, with its reporting deadline", IncidentOut),
    Operation("PATCH", ONE, update_incident_op, WRITE, "Update an incident (reported_at stops the clock)", IncidentOut,
              body=IncidentPatch, errors=(404, 409, 422)),
    Operation("POST", ONE + "/close", close_incident_op, WRITE, "Close an incident", IncidentOut, body=CloseIn,
              body_required=False, errors=(404, 409, 422)),
]  # fmt: skip
