"""``/agents``: create, list (filters + cursor pagination), read, update, suspend/reinstate/revoke;
``/agents/{agent_id}/credentials``: issue, list, revoke, rotate."""

from __future__ import annotations

import json
from typing import Any

from authz.admin.api import Call, Operation, QueryParam
from authz.admin.problems import ApiProblem
from authz.admin.schemas import (
    CREDENTIAL_IN,
    AgentCreate,
    AgentList,
    AgentOut,
    AgentUpdate,
    CredentialList,
    CredentialOut,
    IssuedCredential,
    JwksUriIn,
    PublicKeyIn,
    Rotated,
    RotateIn,
    StatusChange,
)
from authz.core.crypto import b64url, b64url_decode
from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle
from authz.identity.agents.credentials import Issued
from authz.identity.agents.lifecycle import STATUSES
from guard.jsonload import load_json

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
READ, WRITE = "admin:read", "admin:write"


def create_agent(call: Call) -> tuple[int, AgentOut]:
    body: AgentCreate = call.body
    billing = call.ctx.billing
    if body.customer is not None and (billing is None or body.customer not in billing.store.customer_ids()):
        raise ApiProblem(422, f"No customer {body.customer!r}.", errors=[("customer", "no such customer")])
    if body.owner_license_id is not None and call.ctx.licensing is not None:
        # an id of no license here is stored as given (billing's compatibility alias); a license of ours
        # pays only for agents while it is in force (suspending it suspends them)
        lic = call.ctx.licensing.store.license(body.owner_license_id)
        if lic is not None and lic.status != "active":
            raise ApiProblem(422, "The request has invalid fields.",
                             errors=[("owner_license_id", f"the license is {lic.status}")])  # fmt: skip
    agent = lifecycle.create_agent(
        call.agents,
        name=body.name,
        team=body.team,
        owner=body.owner,
        description=body.description,
        tags=body.tags,
        owner_license_id=body.owner_license_id,
        actor=call.actor,
    )
    if body.customer is not None and billing is not None:
        billing.assign(body.customer, "agent", agent.id, actor=call.actor)
    return 201, AgentOut.of(agent)


def list_agents(call: Call) -> tuple[int, AgentList]:
    q = call.query
    errors: list[tuple[str, str]] = []
    limit = DEFAULT_LIMIT
    if "limit" in q:
        try:
            limit = int(q["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            errors.append(("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
    status = q.get("status")
    if status is not None and status not in STATUSES:
        errors.append(("status", f"must be one of {', '.join(STATUSES)}"))
    after = _decode_cursor(q["cursor"]) if "cursor" in q else None
    if "cursor" in q and after is None:
        errors.append(("cursor", "is not a cursor this API returned"))
    if errors:
        raise ApiProblem(422, "The query has invalid parameters.", errors=errors)
    team_id = None
    if q.get("team"):
        team = lifecycle.find_team(call.agents, q["team"])
        if team is None:
            return 200, AgentList(items=[], next_cursor=None)
        team_id = team.id
    rows = call.ctx.store.list_agents(
        team_id=team_id, status=status, tag=q.get("tag") or None, name_contains=q.get("q") or None,
        after=after, limit=limit + 1,
    )  # fmt: skip
    page = rows[:limit]
    more = len(rows) > limit
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return 200, AgentList(items=[AgentOut.of(a) for a in page], next_cursor=next_cursor)


def get_agent(call: Call) -> tuple[int, AgentOut]:
    return 200, AgentOut.of(lifecycle.get_agent(call.agents, call.path["agent_id"]))


def update_agent(call: Call) -> tuple[int, AgentOut]:
    body: AgentUpdate = call.body
    changes: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    errors = [(k, "must not be null") for k in ("name", "description", "tags") if k in changes and changes[k] is None]
    if errors:
        raise ApiProblem(422, "The request has invalid fields.", errors=errors)
    agent = lifecycle.update_agent(call.agents, call.path["agent_id"], actor=call.actor, **changes)
    return 200, AgentOut.of(agent)


def suspend_agent(call: Call) -> tuple[int, AgentOut]:
    body: StatusChange = call.body
    return 200, AgentOut.of(
        lifecycle.suspend_agent(call.agents, call.path["agent_id"], actor=call.actor, reason=body.reason)
    )


def reinstate_agent(call: Call) -> tuple[int, AgentOut]:
    body: StatusChange = call.body
    return 200, AgentOut.of(
        lifecycle.reinstate_agent(call.agents, call.path["agent_id"], actor=call.actor, reason=body.reason)
    )


def revoke_agent(call: Call) -> tuple[int, AgentOut]:
    body: StatusChange = call.body
    return 200, AgentOut.of(
        lifecycle.revoke_agent(call.agents, call.path["agent_id"], actor=call.actor, reason=body.reason)
    )


def issue_credential(call: Call) -> tuple[int, IssuedCredential]:
    body = call.body
    issued = creds.issue_credential(
        call.agents,
        call.path["agent_id"],
        kind=body.kind,
        jwk=body.jwk if isinstance(body, PublicKeyIn) else None,
        jwks_uri=body.jwks_uri if isinstance(body, JwksUriIn) else None,
        actor=call.actor,
    )
    return 201, _issued(issued)


def list_credentials(call: Call) -> tuple[int, CredentialList]:
    rows = creds.list_credentials(call.agents, call.path["agent_id"])
    return 200, CredentialList(items=[CredentialOut.of(c) for c in rows])


def revoke_credential(call: Call) -> tuple[int, CredentialOut]:
    cred = creds.revoke_credential(call.agents, call.path["agent_id"], call.path["credential_id"], actor=call.actor)
    return 200, CredentialOut.of(cred)


def rotate_credential(call: Call) -> tuple[int, Rotated]:
    body: RotateIn = call.body
    new, old = creds.rotate_credential(
        call.agents,
        call.path["agent_id"],
        call.path["credential_id"],
        overlap=body.overlap_seconds,
        jwk=body.jwk,
        jwks_uri=body.jwks_uri,
        actor=call.actor,
    )
    return 201, Rotated(new=_issued(new), old=CredentialOut.of(old))


def _issued(issued: Issued) -> IssuedCredential:
    out = CredentialOut.of(issued.credential).model_dump()
    return IssuedCredential(**out, secret=issued.secret)


def _encode_cursor(created_at: int, agent_id: str) -> str:
    return b64url(json.dumps([created_at, agent_id], separators=(",", ":")).encode())


def _decode_cursor(text: str) -> tuple[int, str] | None:
    try:
        value = load_json(b64url_decode(text), max_bytes=1024)
    except ValueError:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], str)
    ):
        return value[0], value[1]
    return None


LIST_QUERY = (
    QueryParam("team", {"type": "string"}, "Only agents of this team (id or name)."),
    QueryParam("status", {"type": "string", "enum": list(STATUSES)}, "Only agents in this status."),
    QueryParam("tag", {"type": "string"}, "Only agents carrying this tag."),
    QueryParam("q", {"type": "string"}, "Only agents whose name contains this text (case-insensitive)."),
    QueryParam(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size."
    ),
    QueryParam("cursor", {"type": "string"}, "The next_cursor of the previous page."),
)
A = "/agents/{agent_id}"
C = A + "/credentials/{credential_id}"

OPERATIONS = [
    Operation("POST", "/agents", create_agent, WRITE, "Create an agent", AgentOut, 201, AgentCreate, errors=()),
    Operation("GET", "/agents", list_agents, READ, "List agents", AgentList, query=LIST_QUERY, errors=()),
    Operation("GET", A, get_agent, READ, "Read an agent", AgentOut),
    Operation("PATCH", A, update_agent, WRITE, "Update an agent", AgentOut, body=AgentUpdate, errors=(404, 409)),
    Operation("POST", A + "/suspend", suspend_agent, WRITE, "Suspend an agent: its live tokens die at once",
              AgentOut, body=StatusChange, body_required=False, errors=(404, 409)),
    Operation("POST", A + "/reinstate", reinstate_agent, WRITE, "Reinstate a suspended agent (old tokens stay dead)",
              AgentOut, body=StatusChange, body_required=False, errors=(404, 409)),
    Operation("POST", A + "/revoke", revoke_agent, WRITE, "Revoke an agent permanently", AgentOut,
              body=StatusChange, body_required=False, errors=(404, 409)),
    Operation("POST", A + "/credentials", issue_credential, WRITE, "Issue a credential (a secret is shown once)",
              IssuedCredential, 201, CREDENTIAL_IN, errors=(404, 409)),
    Operation("GET", A + "/credentials", list_credentials, READ, "List an agent's credentials (never secrets)",
              CredentialList),
    Operation("POST", C + "/revoke", revoke_credential, WRITE, "Revoke a credential at once", CredentialOut,
              body=StatusChange, body_required=False, errors=(404, 409)),
    Operation("POST", C + "/rotate", rotate_credential, WRITE, "Rotate a credential with an overlap window",
              Rotated, 201, RotateIn, body_required=False, errors=(404, 409)),
]  # fmt: skip
