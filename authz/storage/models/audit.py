"""The audit log's Merkle tree, its signed checkpoints, and the erasable subject-to-pseudonym mapping.

``audit_tree_nodes`` holds every complete subtree hash of the RFC 9162 tree over the audit records
(level 0 = the leaf hashes); it is written in the same transaction as the records and outlives
them: retention deletes ``audit_events`` rows and keeps these hashes, so old proofs still verify.
``audit_checkpoints`` keeps each signed checkpoint (a copy also goes to a directory outside the
database). ``subject_pseudonyms`` maps a person's subject id to the random pseudonym the records
carry; erasing a person deletes their row, and nothing left links the pseudonym to them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class AuditTreeNode(Base):
    """One complete subtree: covers leaves ``[idx << level, (idx + 1) << level)``."""

    __tablename__ = "audit_tree_nodes"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed C2SP checkpoint (the note verbatim) of the tree at ``size`` leaves."""

    __tablename__ = "audit_checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class SubjectPseudonym(Base):
    """The only link between a person (or an IP address) and the pseudonym in audit records."""

    __tablename__ = "subject_pseudonyms"
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
