"""Storing and activating a policy version: the one path the admin API and the console both take.

:func:`deploy` validates the whole set (:func:`policies.build`; an invalid set
raises ``policies.PolicyError`` with every problem's file, line and column, and nothing changes),
stores it as the new active version, reloads this replica's engine (the others follow the change
feed) and audits ``policy.deployed`` with the author. Only ``AUTHZ_POLICIES=db`` uses stored
versions, so on any other setting :class:`NotStored` is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import policies
from authz.audit.log import AuditLog
from authz.policy.engine import DB_SETTING, PolicyEngine, PolicyVersionStore, content_sha256
from policies.loader import read_sources


class NotStored(Exception):
    """This server does not load stored policy versions (``AUTHZ_POLICIES`` is not ``db``)."""


def default_parts() -> tuple[str, dict[str, str], dict[str, str]]:
    """(schema, sources, entities) of the embedded set."""
    schema_text, sources, entities = read_sources(policies.DEFAULT_DIR)
    return schema_text, sources, entities or {"entities.json": "[]"}


def current_parts(store: PolicyVersionStore) -> tuple[int | None, str, dict[str, str], dict[str, str]]:
    """(version or None for the embedded set, schema, sources, entities) of what is active."""
    row = store.active_policy_version()
    if row is None:
        return (None, *default_parts())
    return row.version, row.schema_text, dict(row.sources), dict(row.entities)


def validate(schema_text: str, sources: Mapping[str, str], entities: Mapping[str, str]) -> None:
    """Raises ``policies.PolicyError`` (located problems) when the set does not load."""
    policies.build(schema_text, dict(sources), dict(entities))


def deploy(
    setting: str,
    store: PolicyVersionStore,
    engine: PolicyEngine,
    audit: AuditLog,
    *,
    author: str,
    comment: str,
    schema_text: str,
    sources: Mapping[str, str],
    entities: Mapping[str, str],
) -> Any:
    if setting != DB_SETTING:
        raise NotStored(
            f"This server loads its policies from AUTHZ_POLICIES={setting!r}; "
            f"stored versions are used only with AUTHZ_POLICIES={DB_SETTING}."
        )
    validate(schema_text, sources, entities)
    row = store.add_policy_version(
        author=author,
        comment=comment,
        schema_text=schema_text,
        sources=dict(sources),
        entities=dict(entities),
        sha256=content_sha256(schema_text, sources, entities),
    )
    engine.reload(store)  # this replica at once; the others through the change feed
    audit.operator_change(
        "policy", "deployed", actor=author, target=f"policy-version/{row.version}", version=row.version,
        sha256=row.sha256, author=row.author, comment=row.comment or None,
    )  # fmt: skip
    return row
