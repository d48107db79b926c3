"""``/teams``: create, list, read."""

from __future__ import annotations

from authz.admin.api import Call, Operation
from authz.admin.schemas import TeamCreate, TeamList, TeamOut
from authz.identity.agents import lifecycle


def create_team(call: Call) -> tuple[int, TeamOut]:
    body: TeamCreate = call.body
    team = lifecycle.create_team(call.agents, name=body.name, description=body.description, actor=call.actor)
    return 201, TeamOut.of(team)


def list_teams(call: Call) -> tuple[int, TeamList]:
    return 200, TeamList(items=[TeamOut.of(t) for t in call.ctx.store.list_teams()])


def get_team(call: Call) -> tuple[int, TeamOut]:
    return 200, TeamOut.of(lifecycle.get_team(call.agents, call.path["team_id"]))


OPERATIONS = [
    Operation("POST", "/teams", create_team, "admin:write", "Create a team", TeamOut, 201, TeamCreate, errors=(409,)),
    Operation("GET", "/teams", list_teams, "admin:read", "List teams", TeamList, errors=()),
    Operation("GET", "/teams/{team_id}", get_team, "admin:read", "Read a team", TeamOut),
]
