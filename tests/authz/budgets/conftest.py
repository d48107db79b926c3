"""Budget fixtures: an injectable clock and one ledger per backend (SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authz.budgets.ledger import Ledger
from tests.authz.budgets.workers import Spec, close, make_ledger


class Clock:
    """A settable clock: ``clock()`` is the time the ledger sees."""

    def __init__(self, at: float = 1_780_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
def spec(request: pytest.FixtureRequest) -> Spec:
    """The ledger backend: SQLite, PostgreSQL (migrated to head) or Redis (DB 15, flushed)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return Spec(request.param, url, tag="t" + secrets.token_hex(4))


@pytest.fixture
def ledger_factory(spec: Spec) -> Iterator[Callable[..., Ledger]]:
    made: list[Ledger] = []

    def make(now: Callable[[], float] = time.time) -> Ledger:
        ledger = make_ledger(spec, now=now)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        close(ledger)


@pytest.fixture
def ledger(ledger_factory: Callable[..., Ledger], clock: Clock) -> Ledger:
    return ledger_factory(now=clock)


# -- a real webhook receiver: Starlette on uvicorn on a loopback port ------------------------------
@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers in order; then 200

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = _free_port()
    rec = Receiver(f"http://127.0.0.1:{port}/hook")
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        body = await request.body()
        with lock:
            rec.requests.append((dict(request.headers), body))
            status = rec.answer()
        return Response(status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    yield rec
    server.should_exit = True
    thread.join(10)


def json_of(body: bytes) -> Any:
    import json

    return json.loads(body)
