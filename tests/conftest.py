"""Shared test infrastructure: fresh databases (schema by Alembic), Redis, and the service policy.

Services come from ``AUTHZ_TEST_POSTGRES_URL`` and ``AUTHZ_TEST_REDIS_URL``. A test that needs one
carries the ``postgres``/``redis`` mark (tests that use ``postgres_url``/``redis_url`` get it
automatically). When the service is unreachable the test is skipped, or fails when
``AUTHZ_REQUIRE_SERVICES=1`` (CI), so a missing service can never turn a CI run green.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import migrations
from authz.storage.db import make_engine
from authz.storage.sql import SqlStore

POSTGRES_URL = os.environ.get("AUTHZ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AUTHZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("AUTHZ_REQUIRE_SERVICES") == "1"
SERVICE_FIXTURES = {"postgres": "empty_postgres_url", "redis": "redis_url"}


@functools.cache
def _unreachable(service: str) -> str | None:
    """Why ``service`` cannot be used, or None when it answers. Probed once per session."""
    try:
        if service == "postgres":
            import psycopg

            with psycopg.connect(_pg_url("postgres"), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        else:
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
            try:
                client.ping()
            finally:
                client.close()
    except Exception as exc:
        url = POSTGRES_URL if service == "postgres" else REDIS_URL
        return f"{service} unreachable at {make_url(url).render_as_string()}: {type(exc).__name__}: {exc}"
    return None


def _need(service: str) -> None:
    reason = _unreachable(service)
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AUTHZ_REQUIRE_SERVICES=1: start the service or fix AUTHZ_TEST_*_URL)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use a service fixture, so ``-m 'not postgres'`` and the policy below see them."""
    for item in items:
        for mark, fixture in SERVICE_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for service in SERVICE_FIXTURES:
        if item.get_closest_marker(service) is not None:
            _need(service)


def _pg_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


# -- databases --------------------------------------------------------------------------------
@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL with no schema yet."""
    return f"sqlite:///{tmp_path / 'authz.db'}"


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database with a random name; dropped (even if still in use) at teardown."""
    _need("postgres")
    import psycopg
    from psycopg import sql

    name = f"authz_test_{secrets.token_hex(6)}"
    with psycopg.connect(_pg_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(_pg_url("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_url(empty_sqlite_url: str) -> str:
    """A fresh SQLite file database migrated to head by Alembic."""
    migrations.upgrade(empty_sqlite_url)
    return empty_sqlite_url


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    """A fresh PostgreSQL database migrated to head by Alembic."""
    migrations.upgrade(empty_postgres_url)
    return empty_postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each migrated database in turn: SQLite, then PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """The SQL store on ``db_url``; its engine is disposed at teardown."""
    engine = make_engine(db_url)
    try:
        yield SqlStore(engine)
    finally:
        engine.dispose()


# -- other services ---------------------------------------------------------------------------
@pytest.fixture
def redis_url() -> str:
    """The test Redis database (15), flushed before the test."""
    _need("redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
