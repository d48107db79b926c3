"""``/policies``: Cedar scope policies stored in the database, with version history.

``PUT /policies`` validates the whole set with :func:`policies.build` (through
:func:`authz.policy.versions.deploy`, which the console uses too); an invalid set is refused (422,
every problem with its file, line and column) and nothing changes. A valid set becomes the new active
version in one transaction (the old one is deactivated) together with a ``policy`` change-feed entry,
which every replica's change watcher follows (``AUTHZ_POLICIES=db``). On any other setting the stored
versions are not used, so the write is refused with 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import policies
from authz.admin.api import Call, Operation
from authz.admin.problems import ApiProblem, _pointer
from authz.policy import versions
from authz.policy.engine import PolicyVersionStore
from policies import PolicyError, Problem
from policies.loader import SCHEMA_FILE

MAX_POLICY_BODY = 1024 * 1024  # bytes: a whole policy set travels in one request


class PolicySetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str | None = Field(
        None, alias="schema", description="The Cedar schema text; default: the embedded set's schema."
    )
    sources: dict[str, str] = Field(
        min_length=1, description="Policy files, `{name: Cedar text}` (e.g. `servers/demo.cedar`)."
    )
    entities: str | dict[str, str] | None = Field(
        None,
        description="Entity files, `{name: JSON text}` (a string is one `entities.json`); "
        "default: the embedded set's entity files.",
    )
    comment: str = Field("", max_length=2000, description="Why this version (kept in the history).")


class PolicyVersionOut(BaseModel):
    version: int
    author: str = Field(description="The admin client that stored the version.")
    created_at: int
    comment: str
    sha256: str = Field(description="SHA-256 over the canonical JSON of schema, sources and entities.")
    active: bool

    @classmethod
    def of(cls, row: Any) -> PolicyVersionOut:
        return cls(
            version=row.version,
            author=row.author,
            created_at=row.created_at,
            comment=row.comment,
            sha256=row.sha256,
            active=row.active,
        )


class PolicyVersionDetail(PolicyVersionOut):
    schema_: str = Field(alias="schema", serialization_alias="schema")
    sources: dict[str, str]
    entities: dict[str, str]
    policy_ids: list[str] = Field(description="The @id of every policy in the set.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def of_row(cls, row: Any) -> PolicyVersionDetail:
        ids: list[str] = []
        try:
            ids = policies.build(row.schema_text, row.sources, row.entities).policy_ids
        except PolicyError:
            pass  # validated when stored; shown anyway if a newer Cedar disagrees
        return cls(
            **PolicyVersionOut.of(row).model_dump(),
            schema_=row.schema_text,
            sources=row.sources,
            entities=row.entities,
            policy_ids=ids,
        )


class PolicyVersionList(BaseModel):
    items: list[PolicyVersionOut] = Field(description="Newest first.")


class PolicyProblem(ApiProblem):
    """422 for an invalid policy set or test: ``errors`` (field, pointer, detail) and ``problems`` (file, line, col)."""

    def __init__(self, problems: list[Problem], schema_file: str, sources: Mapping[str, str]) -> None:
        super().__init__(422, f"The policy set is invalid ({len(problems)} problem(s)); nothing was changed.")
        self.problems, self.schema_file, self.sources = problems, schema_file, sources

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["errors"] = [
            {"field": self._field(p.file), "pointer": self._pointer(p.file), "detail": str(p)} for p in self.problems
        ]
        body["problems"] = [{"file": p.file, "line": p.line, "col": p.col, "message": p.message} for p in self.problems]
        return body

    def _where(self, file: str) -> tuple[str, str]:
        """(body member, key in it) of a problem's file; a test's file is ``tests/<name>``."""
        if file in self.sources:
            return "sources", file
        if file.startswith("tests/"):
            return "tests", file.removeprefix("tests/")
        return "entities", file

    def _field(self, file: str) -> str:
        if file == self.schema_file:
            return "schema"
        where, key = self._where(file)
        return f"{where}[{key}]"

    def _pointer(self, file: str) -> str:
        if file == self.schema_file:
            return _pointer("schema")
        where, key = self._where(file)
        return "#/" + where + "/" + key.replace("~", "~0").replace("/", "~1")


def _store(call: Call) -> PolicyVersionStore:
    store = call.ctx.store
    if not isinstance(store, PolicyVersionStore):  # pragma: no cover - every SQL store has it
        raise ApiProblem(500, "This store keeps no policy versions.")
    return store


def schema_and_entities(schema_: str | None, entities: str | Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """A request's schema text and entity files, the embedded set's where it gives none (a string is
    one ``entities.json``)."""
    default_schema, _, default_entities = versions.default_parts()
    if entities is None:
        files = default_entities
    elif isinstance(entities, str):
        files = {"entities.json": entities}
    else:
        files = dict(entities)
    return (default_schema if schema_ is None else schema_), files


def put_policies(call: Call) -> tuple[int, PolicyVersionDetail]:
    body: PolicySetIn = call.body
    schema_text, entities = schema_and_entities(body.schema_, body.entities)
    try:
        row = versions.deploy(
            call.ctx.settings.policies,
            _store(call),
            call.ctx.policy,
            call.ctx.audit,
            author=call.actor,
            comment=body.comment,
            schema_text=schema_text,
            sources=body.sources,
            entities=entities,
        )
    except versions.NotStored as exc:
        raise ApiProblem(409, str(exc)) from exc
    except PolicyError as exc:
        raise PolicyProblem(exc.problems, SCHEMA_FILE, body.sources) from exc
    return 201, PolicyVersionDetail.of_row(row)


def get_policies(call: Call) -> tuple[int, PolicyVersionDetail]:
    row = _store(call).active_policy_version()
    if row is None:
        raise ApiProblem(404, "No policy version is stored.")
    return 200, PolicyVersionDetail.of_row(row)


def list_policy_versions(call: Call) -> tuple[int, PolicyVersionList]:
    return 200, PolicyVersionList(items=[PolicyVersionOut.of(r) for r in _store(call).list_policy_versions()])


def get_policy_version(call: Call) -> tuple[int, PolicyVersionDetail]:
    raw = call.path["version"]
    row = _store(call).get_policy_version(int(raw)) if raw.isdigit() and len(raw) < 18 else None
    if row is None:
        raise ApiProblem(404, f"No policy version {raw}.")
    return 200, PolicyVersionDetail.of_row(row)


OPERATIONS = [
    Operation("PUT", "/policies", put_policies, "admin:write", "Store and activate a policy set",
              PolicyVersionDetail, 201, PolicySetIn, errors=(409,), max_body=MAX_POLICY_BODY),
    Operation("GET", "/policies", get_policies, "admin:read", "Read the active policy version", PolicyVersionDetail),
    Operation("GET", "/policies/versions", list_policy_versions, "admin:read", "List policy versions",
              PolicyVersionList, errors=()),
    Operation("GET", "/policies/versions/{version}", get_policy_version, "admin:read", "Read a policy version",
              PolicyVersionDetail),
]  # fmt: skip
