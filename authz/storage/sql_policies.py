"""SQL repository for stored policy versions (mixed into :class:`authz.storage.sql.SqlStore`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from authz.storage.models.policies import PolicyVersion
from authz.storage.sql_feed import _change

POLICY_TOPIC = "policy"


class SqlPolicyMixin:
    sessions: sessionmaker[Session]

    def active_policy_version(self) -> PolicyVersion | None:
        with self.sessions() as s:
            return s.scalars(
                select(PolicyVersion).where(PolicyVersion.active.is_(True)).order_by(PolicyVersion.version.desc())
            ).first()

    def get_policy_version(self, version: int) -> PolicyVersion | None:
        with self.sessions() as s:
            return s.get(PolicyVersion, version)

    def list_policy_versions(self) -> Sequence[PolicyVersion]:
        """Every stored version, newest first."""
        with self.sessions() as s:
            return s.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())).all()

    def add_policy_version(
        self,
        *,
        author: str,
        comment: str,
        schema_text: str,
        sources: Mapping[str, str],
        entities: Mapping[str, str],
        sha256: str,
    ) -> PolicyVersion:
        """Store a (validated) policy set as the new active version, deactivating the old one, and
        publish a ``policy`` change so every replica reloads it: all in one transaction."""
        with self.sessions.begin() as s:
            s.execute(update(PolicyVersion).where(PolicyVersion.active.is_(True)).values(active=False))
            row = PolicyVersion(
                created_at=int(time.time()),
                author=author,
                comment=comment,
                schema_text=schema_text,
                sources=dict(sources),
                entities=dict(entities),
                sha256=sha256,
                active=True,
            )
            s.add(row)
            s.flush()
            _change(s, POLICY_TOPIC, str(row.version))
        return row
