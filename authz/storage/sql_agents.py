"""SQL implementation of the team and agent repositories (mixed into ``authz.storage.sql.SqlStore``).

State changes are conditional ``UPDATE``s (``WHERE status IN ...``) whose row count decides whether
the transition happened, so two administrators racing on one agent cannot both win. Every write
that changes what an agent's client may do publishes a ``client`` change for the agent id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from authz.storage.models import Agent, AgentCredential, Client, Team
from authz.storage.sql_feed import _change, _rowcount


class SqlAgentStore:
    """Teams, agents and agent credentials. Needs ``self.sessions`` (set by ``SqlStore``)."""

    sessions: sessionmaker[Session]

    # -- teams ---------------------------------------------------------------------------------
    def add_team(self, team: Team) -> bool:
        try:
            with self.sessions.begin() as s:
                s.add(team)
        except IntegrityError:
            return False
        return True

    def get_team(self, team_id: str) -> Team | None:
        with self.sessions() as s:
            return s.get(Team, team_id)

    def get_team_by_name(self, name: str) -> Team | None:
        with self.sessions() as s:
            return s.scalars(select(Team).where(Team.name == name)).first()

    def list_teams(self) -> Sequence[Team]:
        with self.sessions() as s:
            return s.scalars(select(Team).order_by(Team.name)).all()

    # -- agents --------------------------------------------------------------------------------
    def create_agent(self, agent: Agent, client: Client) -> None:
        with self.sessions.begin() as s:
            s.add(agent)
            s.flush()  # the agent row first: its id is what the client row points at
            s.add(client)
            _changed(s, agent.id)

    def get_agent(self, agent_id: str) -> Agent | None:
        with self.sessions() as s:
            return s.get(Agent, agent_id)

    def list_agents(
        self,
        *,
        team_id: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        name_contains: str | None = None,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Agent]:
        query = select(Agent)
        if team_id is not None:
            query = query.where(Agent.team_id == team_id)
        if status is not None:
            query = query.where(Agent.status == status)
        if name_contains:
            query = query.where(Agent.name.icontains(name_contains, autoescape=True))
        if after is not None:
            query = query.where(
                or_(Agent.created_at > after[0], and_(Agent.created_at == after[0], Agent.id > after[1]))
            )
        with self.sessions() as s:
            if tag is not None:
                query = query.where(_has_tag(s, tag))
            return s.scalars(query.order_by(Agent.created_at, Agent.id).limit(limit)).all()

    def update_agent(self, agent_id: str, values: dict[str, Any], *, when_status: Sequence[str]) -> Agent | None:
        with self.sessions.begin() as s:
            n = _rowcount(
                s.execute(update(Agent).where(Agent.id == agent_id, Agent.status.in_(when_status)).values(**values))
            )
            if not n:
                return None
            _changed(s, agent_id)
            return s.get(Agent, agent_id)

    def change_agent_status(
        self, agent_id: str, status: str, *, when_status: Sequence[str], now: int, revoke_credentials: bool = False
    ) -> Agent | None:
        with self.sessions.begin() as s:
            n = _rowcount(
                s.execute(
                    update(Agent)
                    .where(Agent.id == agent_id, Agent.status.in_(when_status))
                    .values(status=status, status_changed_at=now, updated_at=now)
                )
            )
            if not n:
                return None
            client_status = "active" if status == "active" else "disabled"
            s.execute(
                update(Client)
                .where(Client.client_id == agent_id, Client.agent_id == agent_id)
                .values(status=client_status, updated_at=now)
            )
            if revoke_credentials:
                s.execute(
                    update(AgentCredential)
                    .where(AgentCredential.agent_id == agent_id, AgentCredential.status == "active")
                    .values(status="revoked", revoked_at=now)
                )
            _changed(s, agent_id)
            return s.get(Agent, agent_id)

    # -- credentials ---------------------------------------------------------------------------
    def add_credential(self, credential: AgentCredential) -> None:
        with self.sessions.begin() as s:
            s.add(credential)
            _changed(s, credential.agent_id)

    def get_credential(self, agent_id: str, credential_id: str) -> AgentCredential | None:
        with self.sessions() as s:
            row = s.get(AgentCredential, credential_id)
            return row if row is not None and row.agent_id == agent_id else None

    def list_credentials(self, agent_id: str) -> Sequence[AgentCredential]:
        with self.sessions() as s:
            return s.scalars(
                select(AgentCredential)
                .where(AgentCredential.agent_id == agent_id)
                .order_by(AgentCredential.created_at, AgentCredential.id)
            ).all()

    def revoke_credential(self, agent_id: str, credential_id: str, now: int) -> bool:
        with self.sessions.begin() as s:
            n = _rowcount(
                s.execute(
                    update(AgentCredential)
                    .where(
                        AgentCredential.id == credential_id,
                        AgentCredential.agent_id == agent_id,
                        AgentCredential.status == "active",
                    )
                    .values(status="revoked", revoked_at=now)
                )
            )
            if n:
                _changed(s, agent_id)
            return bool(n)

    def rotate_credential(
        self, agent_id: str, credential_id: str, new: AgentCredential, old_expires_at: int, now: int
    ) -> bool:
        with self.sessions.begin() as s:
            n = _rowcount(
                s.execute(
                    update(AgentCredential)
                    .where(
                        AgentCredential.id == credential_id,
                        AgentCredential.agent_id == agent_id,
                        AgentCredential.status == "active",
                        AgentCredential.expires_at.is_(None),
                    )
                    .values(expires_at=old_expires_at)
                )
            )
            if not n:
                return False
            s.add(new)
            _changed(s, agent_id)
            return True


def _has_tag(s: Session, tag: str) -> Any:
    """``tag`` is an element of the JSON ``tags`` list (PostgreSQL ``@>``, SQLite ``json_each``)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return func.cast(Agent.tags, JSONB).op("@>")(func.cast(func.json_build_array(tag), JSONB))
    each = func.json_each(Agent.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _changed(s: Session, agent_id: str) -> None:
    _change(s, "client", agent_id)
