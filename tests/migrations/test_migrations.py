"""The Alembic history: one linear chain, schema equal to the models, clean downgrade, data kept."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from authz.storage.db import make_engine
from authz.storage.models import Base
from authz.storage.sql import SqlStore

TABLES = set(Base.metadata.tables)  # every model's table: head must create exactly these


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """Each database, empty: SQLite, then PostgreSQL."""
    url: str = request.getfixturevalue(f"empty_{request.param}_url")
    return url


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(empty_db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))


def head() -> str:
    heads = script().get_heads()
    assert len(heads) == 1, f"several heads: {heads}; merge them"
    return heads[0]


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


def test_history_is_one_linear_chain_of_sequential_files() -> None:
    """File numbers follow the chain (0001, 0002, ...); revision ids are unique (``0009`` or, since several
    engineers add revisions at once, an id assigned with the work such as ``0014_licensing``)."""
    revisions = list(reversed(list(script().walk_revisions())))  # base first
    files = [os.path.basename(r.path) for r in revisions]
    assert [f[:5] for f in files] == [f"{n:04d}_" for n in range(1, len(revisions) + 1)], files
    assert len({r.revision for r in revisions}) == len(revisions)
    assert [r.down_revision for r in revisions] == [None, *(r.revision for r in revisions[:-1])]
    assert script().get_heads() == [revisions[-1].revision]


def test_empty_database_has_no_revision(empty_db_url: str) -> None:
    assert migrations.current(empty_db_url) is None


def test_upgrade_to_head_matches_models(empty_db_url: str, engine: sa.Engine) -> None:
    migrations.upgrade(empty_db_url)
    assert migrations.current(empty_db_url) == head()
    assert table_names(engine) == TABLES | {"alembic_version"}
    assert schema_diff(engine) == []


def test_constraint_and_index_names_follow_the_naming_convention(empty_db_url: str, engine: sa.Engine) -> None:
    migrations.upgrade(empty_db_url)
    inspector = sa.inspect(engine)
    for table in TABLES:
        assert inspector.get_pk_constraint(table)["name"] in (f"pk_{table}", None)  # SQLite does not keep pk names
    assert {u["name"] for u in inspector.get_unique_constraints("users")} == {"uq_users_username"}
    assert {u["name"] for u in inspector.get_unique_constraints("audit_events")} == {
        "uq_audit_events_hash",
        "uq_audit_events_leaf_index",
    }
    assert {i["name"] for i in inspector.get_indexes("grants")} == {"ix_grants_client_id", "ix_grants_subject"}
    assert {i["name"] for i in inspector.get_indexes("revocations")} == {"ix_revocations_kind_value"}
    assert {i["name"] for i in inspector.get_indexes("audit_events")} >= {"ix_audit_events_at", "ix_audit_events_event"}


def test_downgrade_to_base_then_upgrade_again(empty_db_url: str, engine: sa.Engine) -> None:
    migrations.upgrade(empty_db_url)
    migrations.downgrade(empty_db_url, "base")
    assert migrations.current(empty_db_url) is None
    assert table_names(engine) <= {"alembic_version"}

    migrations.upgrade(empty_db_url)
    assert migrations.current(empty_db_url) == head()
    assert schema_diff(engine) == []


def test_every_revision_steps_up_down_and_up(empty_db_url: str) -> None:
    for revision in reversed(list(script().walk_revisions())):
        previous = revision.down_revision
        assert previous is None or isinstance(previous, str), "merge revisions are not expected"
        migrations.upgrade(empty_db_url, revision.revision)
        migrations.downgrade(empty_db_url, previous or "base")
        assert migrations.current(empty_db_url) == previous
        migrations.upgrade(empty_db_url, revision.revision)
        assert migrations.current(empty_db_url) == revision.revision


# The 0001 shape of a client, written without the ORM so later model changes cannot break the insert.
CLIENTS_0001 = sa.table(
    "clients",
    *(sa.column(name) for name in ("client_id", "kind", "client_name", "token_endpoint_auth_method", "scope")),
    *(sa.column(name) for name in ("application_type", "status", "created_at", "updated_at")),
    *(sa.column(name, sa.JSON) for name in ("redirect_uris", "grant_types", "extra")),
)


def test_rows_written_at_0001_survive_upgrades(empty_db_url: str, engine: sa.Engine) -> None:
    migrations.upgrade(empty_db_url, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(CLIENTS_0001).values(
                client_id="survivor",
                kind="static",
                client_name="Survivor",
                token_endpoint_auth_method="none",
                scope="tools:read",
                application_type="native",
                status="disabled",
                created_at=1_700_000_000,
                updated_at=1_700_000_001,
                redirect_uris=["http://127.0.0.1/cb"],
                grant_types=["authorization_code", "refresh_token"],
                extra={"k": [1, 2]},
            )
        )

    migrations.upgrade(empty_db_url)
    migrations.upgrade(empty_db_url)  # idempotent at head
    assert migrations.current(empty_db_url) == head()

    client = SqlStore(engine).get_client("survivor")
    assert client is not None
    assert (client.client_name, client.scope, client.status) == ("Survivor", "tools:read", "disabled")
    assert client.redirect_uris == ["http://127.0.0.1/cb"]
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.extra == {"k": [1, 2]}
    assert (client.created_at, client.updated_at) == (1_700_000_000, 1_700_000_001)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(CLIENTS_0001)) == 1


def test_config_keeps_the_url_verbatim() -> None:
    url = "postgresql://authz:p%40ss%25w@db.internal:5432/authz"  # '%' must survive ConfigParser interpolation
    config = migrations.alembic_config(url)
    assert config.get_main_option("sqlalchemy.url") == url
    assert config.get_main_option("script_location") == str(migrations.HERE)
