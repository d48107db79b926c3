"""The metering batcher against a live server: lost answers never double-count, bounded queue, flush at exit.

A TCP proxy sits between the SDK and ``authz serve``; it forwards each request and, for the first
few answers, closes both connections instead of passing the answer on (the server stored the
batch; the SDK never hears so). The SDK and the batcher send those batches again with the same
ids, and the server's usage counts every event exactly once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest

from agent_client.sdk import Client, RetryPolicy
from agent_client.sdk.batcher import MeteringBatcher
from conformance.procs import free_port
from tests.agent_client.conftest import Live
from tests.agent_client.test_sdk_admin import _settled_calls


class LosingProxy:
    """Forwards TCP to ``upstream``; the first ``lose`` answers are swallowed and both sides closed."""

    def __init__(self, upstream: int, lose: int) -> None:
        self.upstream, self.lose, self.lost = upstream, lose, 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                if answers:
                    with self.lock:
                        swallow = self.lost < self.lose
                        self.lost += swallow
                    if swallow:
                        break  # the server answered; the client never gets it
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def admin(live: Live) -> Iterator[Client]:
    with Client(live.issuer, api_key=live.token) as c:
        yield c


def test_lost_answers_mid_batch_never_double_count(live: Live, admin: Client) -> None:
    proxy = LosingProxy(live.server.port, lose=5)
    agent = f"agt_{uuid.uuid4().hex[:8]}"
    try:
        with Client(
            f"http://127.0.0.1:{proxy.port}", api_key=live.token, retry=RetryPolicy(attempts=2, base_delay=0.01)
        ) as flaky:
            batcher = MeteringBatcher(flaky, max_batch=100, flush_interval=0.05, concurrency=2)
            ids = [batcher.record("call.completed", agent=agent, tool=f"t{i % 7}") for i in range(1000)]
            assert batcher.close(timeout=60)
    finally:
        proxy.close()
    assert proxy.lost == 5  # five answers were really lost ...
    stats = batcher.stats
    assert len(set(ids)) == 1000 and stats.recorded == 1000
    assert stats.duplicates > 0 and stats.sent + stats.duplicates == 1000  # ... and their batches sent again
    assert (stats.rejected, stats.failed, stats.dropped) == (0, 0, 0)
    assert _settled_calls(admin, agent, 1000) == 1000  # counted once each


def test_full_queue_drops_and_counts_when_the_server_is_unreachable(live: Live) -> None:
    dead = free_port()  # nothing listens: every send fails, batches are requeued
    with Client(f"http://127.0.0.1:{dead}", api_key=live.token, retry=RetryPolicy(attempts=1), timeout=2) as client:
        batcher = MeteringBatcher(
            client, max_batch=10, max_queue=20, when_full="drop", concurrency=1, flush_interval=0.01
        )
        results = [batcher.record("call.completed", agent="agt_drop") for _ in range(100)]
        stats = batcher.stats
        assert stats.recorded + stats.dropped == 100
        assert stats.recorded <= 20 + 10  # the queue, plus the one batch in flight
        assert results.count(None) == stats.dropped > 0
        assert batcher.close(timeout=0.5) is False  # unsent events are reported, not waited on forever


def test_queued_events_are_sent_at_interpreter_exit(live: Live, admin: Client) -> None:
    agent = f"agt_{uuid.uuid4().hex[:8]}"
    script = (
        "import sys\n"
        "from agent_client.sdk import Client\n"
        "from agent_client.sdk.batcher import MeteringBatcher\n"
        "client = Client(sys.argv[1], api_key=sys.argv[2])\n"
        "batcher = MeteringBatcher(client, flush_interval=3600)\n"
        "for i in range(250):\n"
        "    batcher.record('call.completed', agent=sys.argv[3])\n"
        "print(batcher.stats.sent)\n"  # nothing sent yet: the interval is an hour
    )
    done = subprocess.run(
        [sys.executable, "-c", script, live.issuer, live.token, agent], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    assert _settled_calls(admin, agent, 250) == 250


def test_parameters_are_checked(admin: Client) -> None:
    with pytest.raises(ValueError):
        MeteringBatcher(admin, max_batch=1001)
    batcher = MeteringBatcher(admin)
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.record("call.completed", agent="agt_closed")


def test_ids_are_unique_time_ordered_and_kept_when_given(admin: Client) -> None:
    batcher = MeteringBatcher(admin, flush_interval=60)
    try:
        ids = [batcher.record("call.completed", agent="agt_ids") for _ in range(2000)]
        given = batcher.record("call.completed", agent="agt_ids", id="mine-1", timestamp="2026-12-01T10:00:00Z")
        assert given == "mine-1"
        assert len(set(ids)) == len(ids) and ids == sorted(ids)  # type: ignore[type-var]
        other = MeteringBatcher(admin, flush_interval=60)
        assert other.record("call.completed", agent="agt_ids") not in ids
        other.close()
    finally:
        batcher.close()
