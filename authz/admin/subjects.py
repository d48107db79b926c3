"""``/subjects/{subject_id}/export`` and ``/erase``: GDPR Art. 15/20 and Art. 17 for a local user.

Both need the ``subjects:admin`` scope (no other admin scope grants them) and are audit records
(``subject.exported``, ``subject.erased``) naming the admin client and the person's pseudonym.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from authz.admin.api import Call, Operation
from authz.compliance.subjects import erase_subject, export_subject

SCOPE = "subjects:admin"


class SubjectExport(BaseModel):
    """What is held about the person: account, profile, consents, delegations, agents, activity."""

    model_config = {"populate_by_name": True, "serialize_by_alias": True}
    schema_: str = Field(alias="$schema", serialization_alias="$schema")
    subject: str
    generated_at: int
    account: dict[str, Any]
    profile: dict[str, Any]
    consents: list[dict[str, Any]]
    delegations: list[dict[str, Any]]
    agents_created: list[dict[str, Any]]
    activity: dict[str, Any]


class SubjectEraseRequest(BaseModel):
    reason: str | None = Field(None, max_length=255, description="Recorded in the audit trail (e.g. the request id).")


class SubjectErasure(BaseModel):
    """What was erased (counts) and what was kept, with the reason (GDPR Art. 17(3))."""

    subject: str
    erased: dict[str, int]
    kept: list[dict[str, str]]


def export_subject_op(call: Call) -> tuple[int, SubjectExport]:
    doc = export_subject(call.ctx, call.path["subject_id"], call.actor)
    return 200, SubjectExport.model_validate(doc)


def erase_subject_op(call: Call) -> tuple[int, SubjectErasure]:
    reason = call.body.reason if isinstance(call.body, SubjectEraseRequest) else None
    result = erase_subject(call.ctx, call.path["subject_id"], call.actor, reason=reason)
    return 200, SubjectErasure.model_validate(result)


OPERATIONS = [
    Operation("GET", "/subjects/{subject_id}/export", export_subject_op, SCOPE,
              "Export everything held about a person (GDPR Art. 15/20)", SubjectExport),
    Operation("POST", "/subjects/{subject_id}/erase", erase_subject_op, SCOPE,
              "Erase a person: revoke, delete, destroy their key (GDPR Art. 17)", SubjectErasure,
              body=SubjectEraseRequest, body_required=False, errors=(404, 422)),
]  # fmt: skip
