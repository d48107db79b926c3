"""Shared Signals (SSF) tables: the receivers' event streams and the outbox of Security Event Tokens.

A stream belongs to one registered resource server (``client_id``); ``cursor`` is the last
``revocations.seq`` already turned into SETs for it. The outbox holds each signed SET until the
receiver acknowledges it (RFC 8936 §2.4: "Once a SET has been acknowledged, the SET Transmitter is
released from any obligation to retain the SET"); ``(stream_id, source_seq, event_type)`` is unique,
so two replicas fanning out the same revocation fact insert one SET, never two.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base

SEQ = BigInteger().with_variant(Integer(), "sqlite")


class SsfStream(Base):
    """One SSF event stream (SSF 1.0 §8.1.1): receiver-supplied and transmitter-supplied properties."""

    __tablename__ = "ssf_streams"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(512), index=True)  # the resource server that owns it
    audience: Mapped[str] = mapped_column(String(2048))  # the SETs' "aud": the resource server's URI
    method: Mapped[str] = mapped_column(String(64))  # urn:ietf:rfc:8936 (poll)
    events_requested: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | paused | disabled
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)  # last revocations.seq fanned out
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[int] = mapped_column(BigInteger)  # last receiver activity (inactivity_timeout)


class SsfOutbox(Base):
    """A signed SET waiting for the receiver's acknowledgement."""

    __tablename__ = "ssf_outbox"
    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(String(64), ForeignKey("ssf_streams.stream_id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(64))
    source_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the revocation fact, if any
    event_type: Mapped[str] = mapped_column(String(255))
    token: Mapped[str] = mapped_column(Text)  # the signed SET (compact JWS)
    created_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("stream_id", "source_seq", "event_type", name="uq_ssf_outbox_source"),
        Index("ix_ssf_outbox_stream_jti", "stream_id", "jti", unique=True),
    )
