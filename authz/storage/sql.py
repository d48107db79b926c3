"""SQL implementation of every repository Protocol (SQLite and PostgreSQL through SQLAlchemy 2).

Single-use values (authorization codes, refresh tokens, assertion ``jti``) are consumed with one
conditional ``UPDATE``/``INSERT`` whose row count decides who won, so two concurrent redemptions
can never both succeed on either database.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from authz.storage.db import is_postgres, make_sessionmaker
from authz.storage.models import (
    AuditEvent,
    AuthorizationCode,
    ChangeLog,
    Client,
    Consent,
    Grant,
    RefreshToken,
    Resource,
    Revocation,
    SigningKey,
    UsedJti,
    User,
)
from authz.storage.sql_agents import SqlAgentStore
from authz.storage.sql_feed import _change, _now, _rowcount, _serialise_feed
from authz.storage.sql_jti import JtiWriter
from authz.storage.sql_policies import SqlPolicyMixin
from authz.storage.sql_trust import SqlTrustMixin


class SqlStore(SqlAgentStore, SqlTrustMixin, SqlPolicyMixin):
    """All repositories on one engine. Each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        dialect_insert = pg_insert if is_postgres(engine) else sqlite_insert
        remember = dialect_insert(UsedJti).values(key=bindparam("k"), expires_at=bindparam("e"))
        self._remember_stmt = remember.on_conflict_do_update(
            index_elements=[UsedJti.key],
            set_={"expires_at": remember.excluded.expires_at},
            where=UsedJti.expires_at <= bindparam("n"),
        ).returning(UsedJti.key)
        compiled = self._remember_stmt.compile(dialect=engine.dialect)
        self._remember_sql = compiled.string
        self._remember_order = tuple(compiled.positiontup or ()) if compiled.positional else None

    # -- clients -------------------------------------------------------------------------------
    def get_client(self, client_id: str) -> Client | None:
        with self.sessions() as s:
            return s.get(Client, client_id)

    def list_clients(self) -> Sequence[Client]:
        with self.sessions() as s:
            return s.scalars(select(Client).order_by(Client.created_at)).all()

    def put_client(self, client: Client) -> None:
        with self.sessions.begin() as s:
            s.merge(client)
            _change(s, "client", client.client_id)

    def delete_client(self, client_id: str) -> bool:
        with self.sessions.begin() as s:
            n = _rowcount(s.execute(delete(Client).where(Client.client_id == client_id)))
            _change(s, "client", client_id)
            return bool(n)

    def set_client_status(self, client_id: str, status: str) -> bool:
        with self.sessions.begin() as s:
            n = _rowcount(
                s.execute(update(Client).where(Client.client_id == client_id).values(status=status, updated_at=_now()))
            )
            _change(s, "client", client_id)
            return bool(n)

    # -- resources -----------------------------------------------------------------------------
    def get_resource(self, uri: str) -> Resource | None:
        with self.sessions() as s:
            return s.get(Resource, uri)

    def list_resources(self) -> Sequence[Resource]:
        with self.sessions() as s:
            return s.scalars(select(Resource).order_by(Resource.uri)).all()

    def put_resource(self, resource: Resource) -> None:
        with self.sessions.begin() as s:
            s.merge(resource)
            _change(s, "resource", resource.uri)

    def delete_resource(self, uri: str) -> bool:
        with self.sessions.begin() as s:
            n = _rowcount(s.execute(delete(Resource).where(Resource.uri == uri)))
            _change(s, "resource", uri)
            return bool(n)

    # -- users and consent ---------------------------------------------------------------------
    def get_user(self, user_id: str) -> User | None:
        with self.sessions() as s:
            return s.get(User, user_id)

    def get_user_by_name(self, username: str) -> User | None:
        with self.sessions() as s:
            return s.scalars(select(User).where(User.username == username)).first()

    def add_user(self, user: User) -> None:
        with self.sessions.begin() as s:
            s.add(user)

    def set_user_groups(self, user_id: str, groups: Sequence[str]) -> bool:
        with self.sessions.begin() as s:
            user = s.get(User, user_id)
            if user is None:
                return False
            user.groups = sorted(set(groups))
            return True

    def list_users(self) -> Sequence[User]:
        with self.sessions() as s:
            return s.scalars(select(User).order_by(User.username)).all()

    def get_consent(self, user_id: str, client_id: str, resource: str) -> Consent | None:
        with self.sessions() as s:
            return s.get(Consent, (user_id, client_id, resource))

    def put_consent(self, consent: Consent) -> None:
        with self.sessions.begin() as s:
            s.merge(consent)

    # -- authorization codes, grants, refresh tokens -------------------------------------------
    def save_code(self, code: AuthorizationCode, grant: Grant) -> None:
        with self.sessions.begin() as s:
            s.add(grant)
            s.add(code)

    def consume_code(self, code_digest: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        with self.sessions.begin() as s:
            won = _rowcount(
                s.execute(
                    update(AuthorizationCode)
                    .where(AuthorizationCode.code_digest == code_digest, AuthorizationCode.consumed_at.is_(None))
                    .values(consumed_at=now)
                )
            )
            code = s.get(AuthorizationCode, code_digest)
            return code, bool(won)

    def get_grant(self, grant_id: str) -> Grant | None:
        with self.sessions() as s:
            return s.get(Grant, grant_id)

    def revoke_grant(self, grant_id: str, now: int) -> Grant | None:
        with self.sessions.begin() as s:
            s.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None)).values(revoked_at=now))
            s.execute(
                update(RefreshToken)
                .where(RefreshToken.grant_id == grant_id, RefreshToken.spent_at.is_(None))
                .values(spent_at=now)
            )
            return s.get(Grant, grant_id)

    def save_refresh_token(self, token: RefreshToken) -> None:
        with self.sessions.begin() as s:
            s.add(token)

    def spend_refresh_token(self, token_digest: str, now: int) -> tuple[RefreshToken | None, bool]:
        with self.sessions.begin() as s:
            won = _rowcount(
                s.execute(
                    update(RefreshToken)
                    .where(RefreshToken.token_digest == token_digest, RefreshToken.spent_at.is_(None))
                    .values(spent_at=now)
                )
            )
            return s.get(RefreshToken, token_digest), bool(won)

    def find_refresh_token(self, token_digest: str) -> RefreshToken | None:
        with self.sessions() as s:
            return s.get(RefreshToken, token_digest)

    # -- signing keys --------------------------------------------------------------------------
    def list_keys(self) -> Sequence[SigningKey]:
        with self.sessions() as s:
            return s.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid)).all()

    def put_key(self, key: SigningKey) -> None:
        with self.sessions.begin() as s:
            s.add(key)
            _change(s, "key", key.kid)

    def update_keys(self, keys: Sequence[SigningKey]) -> None:
        with self.sessions.begin() as s:
            for key in keys:
                s.merge(key)
                _change(s, "key", key.kid)

    # -- revocations and replay ----------------------------------------------------------------
    def add_revocation(self, kind: str, value: str, expires_at: int, now: int) -> None:
        with self.sessions.begin() as s:
            _serialise_feed(s)
            s.add(Revocation(kind=kind, value=value, expires_at=expires_at, created_at=now))
            _change(s, "revocation", f"{kind}:{value}")

    def revocations_since(self, seq: int, now: int) -> Sequence[Revocation]:
        with self.sessions() as s:
            return s.scalars(
                select(Revocation).where(Revocation.seq > seq, Revocation.expires_at > now).order_by(Revocation.seq)
            ).all()

    def remember_jti(self, key: str, expires_at: int, now: int) -> bool:
        """One statement: insert, or take over an expired row; a live row means a replay (no row returned).

        On the hot path of every ``private_key_jwt`` and DPoP request, so the statement is compiled
        once for the engine's dialect and run on a pooled DBAPI connection: SQLAlchemy's execution
        machinery cost more than the write itself. The database's unique key still decides who won.
        """
        params = {"k": key, "e": expires_at, "n": now}
        args = params if self._remember_order is None else tuple(params[name] for name in self._remember_order)
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(self._remember_sql, args)
                row = cur.fetchone()
            finally:
                cur.close()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()  # back to the pool
        return row is not None

    def jti_writer(self) -> JtiWriter:
        """Batches of ``remember_jti`` in one statement and one commit, on a dedicated connection."""
        return JtiWriter(self.engine)

    def purge_expired(self, now: int) -> int:
        """Delete rows no longer needed (expired codes, jtis, revocations). Returns rows deleted."""
        with self.sessions.begin() as s:
            n = _rowcount(s.execute(delete(UsedJti).where(UsedJti.expires_at <= now)))
            n += _rowcount(s.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now)))
            n += _rowcount(s.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now)))
            return int(n)

    # -- audit (read only: records are appended by authz.audit.store.AuditTreeStore) -------------
    def list_audit(self, after_seq: int = 0, limit: int = 100) -> Sequence[AuditEvent]:
        with self.sessions() as s:
            return s.scalars(
                select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq).limit(limit)
            ).all()

    # -- change feed ---------------------------------------------------------------------------
    def publish_change(self, topic: str, key: str) -> None:
        with self.sessions.begin() as s:
            _change(s, topic, key)

    def changes_since(self, seq: int) -> tuple[int, list[tuple[str, str]]]:
        with self.sessions() as s:
            if seq < 0:  # first poll: start from the head, everything is loaded fresh anyway
                head = s.scalar(select(func.max(ChangeLog.seq))) or 0
                return int(head), []
            rows = s.execute(
                select(ChangeLog.seq, ChangeLog.topic, ChangeLog.key).where(ChangeLog.seq > seq).order_by(ChangeLog.seq)
            ).all()
            if not rows:
                return seq, []
            return int(rows[-1][0]), [(r[1], r[2]) for r in rows]
