"""What the kind of client costs a token: a plain client, an agent, an agent with a hard budget.

Builds a fresh data directory (SQLite, or ``--database-url`` for a PostgreSQL database that exists
and is empty), registers one resource and the three clients, then sends N sequential
client_credentials requests per client straight to the ASGI app ``authz serve`` runs (lifespan on;
no server, no socket) and prints per client: wall time and event-loop thread CPU per request, and
the SQL statements run meanwhile (an SQLAlchemy engine event; the audit writer's and the metering
flusher's batches show as fractions), per request.

Wall time far above the CPU time means the event loop waited (a database round trip, a lock): under
load every other request on that worker waits with it.

    python bench/issuance_clients.py [--requests 100] [--database-url postgresql://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_token import Caller, basic

PY = sys.executable
RESOURCE = "http://127.0.0.1:9500/mcp"
BODY = b"grant_type=client_credentials&resource=http%3A%2F%2F127.0.0.1%3A9500%2Fmcp&scope=tools%3Aread"


def authz(*args: str) -> str:
    return subprocess.run([PY, "-m", "authz", *args], check=True, capture_output=True, text=True).stdout


def field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    raise SystemExit(f"no {name} in: {out}")


def setup() -> dict[str, tuple[str, str]]:
    authz("migrate")
    authz("resources", "add", RESOURCE, "--scopes", "tools:read", "--name", "bench")
    plain = field(
        authz("clients", "add", "--client-id", "plain", "--grant-type", "client_credentials"), "client_secret"
    )
    agent = field(authz("agents", "create", "agent"), "id")
    agent_secret = field(authz("agents", "credentials", "issue", agent), "client_secret")
    budgeted = field(authz("agents", "create", "budgeted"), "id")
    budgeted_secret = field(authz("agents", "credentials", "issue", budgeted), "client_secret")
    authz("budgets", "create", "--agent", budgeted, "--metric", "calls", "--limit", "1000000000000", "--period", "day")
    return {
        "plain client": ("plain", plain),
        "agent, no budget": (agent, agent_secret),
        "agent with a hard budget": (budgeted, budgeted_secret),
    }


async def measure(clients: dict[str, tuple[str, str]], n: int) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from authz.asgi import create

    statements: collections.Counter[str] = collections.Counter()
    counting = [False]

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if counting[0]:
            statements[" ".join(statement.split())[:100]] += 1

    event.listen(Engine, "before_cursor_execute", count)
    app = create()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    caller = Caller(app)
    for name, (client_id, secret) in clients.items():
        headers = [(b"authorization", basic(client_id, secret))]
        for _ in range(20):  # warm the caches
            await caller.post("/token", BODY, headers)
        statements.clear()
        counting[0] = True
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n):
            status, out = await caller.post("/token", BODY, headers)
            assert status == 200, out
        wall, cpu = (time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6
        counting[0] = False
        print(f"{name}: {wall:,.0f} µs wall, {cpu:,.0f} µs event-loop CPU per request")
        for statement, times in statements.most_common(6):
            print(f"    {times / n:.2f} x {statement}")
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    args = p.parse_args()
    data = tempfile.mkdtemp(prefix="authz-clients.")
    os.environ.update(AUTHZ_ISSUER="http://127.0.0.1:9150", AUTHZ_DATA_DIR=data, AUTHZ_DATABASE_URL=args.database_url)
    os.chdir(data)
    clients = setup()
    head = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"# authz {head}, {'PostgreSQL' if args.database_url else 'SQLite'}, {args.requests} sequential requests "
          f"per client, load average {load}")  # fmt: skip
    asyncio.run(measure(clients, args.requests))


if __name__ == "__main__":
    main()
