"""SQL repository for trusted JWT issuers (mixed into :class:`authz.storage.sql.SqlStore`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from authz.storage.models import TrustedIssuer


class SqlTrustMixin:
    sessions: sessionmaker[Session]

    def get_trusted_issuer(self, issuer: str) -> TrustedIssuer | None:
        with self.sessions() as s:
            return s.get(TrustedIssuer, issuer)

    def list_trusted_issuers(self) -> Sequence[TrustedIssuer]:
        with self.sessions() as s:
            return s.scalars(select(TrustedIssuer).order_by(TrustedIssuer.issuer)).all()

    def put_trusted_issuer(self, row: TrustedIssuer) -> None:
        with self.sessions.begin() as s:
            s.merge(row)

    def delete_trusted_issuer(self, issuer: str) -> bool:
        with self.sessions.begin() as s:
            result = s.execute(delete(TrustedIssuer).where(TrustedIssuer.issuer == issuer))
            return bool(getattr(result, "rowcount", 0))
