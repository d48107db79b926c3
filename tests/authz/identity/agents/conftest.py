"""Agent fixtures: the authorization server on SQLite and on PostgreSQL, and lifecycle helpers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey

from authz.identity.agents.lifecycle import Agents
from tests.authz.conftest import AS, RESOURCE, ASFactory

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def engines_to_dispose() -> Iterator[list[sa.Engine]]:
    engines: list[sa.Engine] = []
    yield engines
    for engine in engines:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def agents_db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def server(agents_db_url: str, engines_to_dispose: list[sa.Engine], as_factory: ASFactory) -> AS:
    """The authorization server (no development mode) on each database in turn.

    Set-up order is the database, then the engine disposer, then the app, so tear-down stops the app,
    closes its connections, and only then drops the database."""
    srv = await as_factory(database_url=agents_db_url)
    engines_to_dispose.append(srv.ctx.store.engine)  # type: ignore[attr-defined]
    return srv


def deps(server: AS) -> Agents:
    return Agents.from_context(server.ctx)


async def secret_token(server: AS, agent_id: str, secret: str, **form: str) -> httpx2.Response:
    data = {"grant_type": "client_credentials", "resource": RESOURCE, **form}
    return await server.http.post("/token", data=data, auth=(agent_id, secret))


def assertion(key: ECKey, client_id: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "http://127.0.0.1:9100", "iat": now, "exp": now + 60,
              "jti": uuid.uuid4().hex}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


async def key_token(server: AS, agent_id: str, key: ECKey) -> httpx2.Response:
    return await server.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "resource": RESOURCE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, agent_id),
        },
    )


def next_second() -> None:
    """Revocation facts cut off at whole seconds: a token issued in the second of a suspension dies with it."""
    time.sleep(1.01 - (time.time() % 1))


def body(response: httpx2.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data
