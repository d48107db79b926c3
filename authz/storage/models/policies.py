"""Policy versions: Cedar policy sets stored in the database, one of them active.

Every accepted ``PUT /api/v1/policies`` appends a row; the previous active row is deactivated in
the same transaction, so at most one row is active. Rows are never changed otherwise: the table is
the version history (who, when, why, and exactly what, with a SHA-256 over the canonical content).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base

# SQLite only auto-increments an ``INTEGER PRIMARY KEY`` (the rowid); PostgreSQL gets a bigint identity.
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class PolicyVersion(Base):
    """One stored policy set: schema, policy files ``{name: text}`` and entity files ``{name: text}``."""

    __tablename__ = "policy_versions"
    version: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    author: Mapped[str] = mapped_column(String(255))  # the admin client id from the access token
    comment: Mapped[str] = mapped_column(Text, default="")
    schema_text: Mapped[str] = mapped_column(Text)
    sources: Mapped[dict[str, str]] = mapped_column(JSON)
    entities: Mapped[dict[str, str]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
