"""``authz demo``: the authorization server in development mode plus a protected demo MCP server.

Everything runs on loopback from ``.authz/demo``: the AS signs in the ``demo`` user and consents
automatically, accepts client ID metadata documents and open dynamic registration, and knows the
demo MCP server (``tools:read``, ``tools:write``, ``tools:admin``). The agent ``demo-agent`` gets a
fresh secret at every start so the printed ``curl`` lines work as shown.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

from authz.admin.bootstrap import create_admin_client, ensure_admin_resource
from authz.app import build_context
from authz.billing import demo as billing_demo
from authz.context import Context
from authz.core.settings import Settings, record_running_issuer
from authz.identity.agents.credentials import issue_credential, list_credentials, revoke_credential
from authz.identity.agents.lifecycle import Agents, create_agent
from authz.identity.registry import register_resource
from authz.preflight import SetupError, installed, needs_extra

DEMO_SCOPES = ["tools:read", "tools:write", "tools:admin"]
USAGE_CLIENT_NAME = "authz demo MCP server: budgets and metering"


def _prepare(ctx: Context, resource: str) -> tuple[str, str, str, str, str, str]:
    """(Re)register the demo MCP server, its budget/metering client, and the demo agent's fresh secret.

    Returns (rs id, rs secret, agent id, agent secret, usage client id, usage client secret).
    """
    store = ctx.store
    for c in store.list_clients():
        if c.client_name == USAGE_CLIENT_NAME or (c.kind == "resource_server" and c.resource_uri == resource):
            store.delete_client(c.client_id)
    rs = register_resource(store, store, ctx.keyring, resource, DEMO_SCOPES, "authz demo MCP server")
    deps = Agents.from_context(ctx)
    existing = [a for a in ctx.store.list_agents(name_contains="demo-agent", limit=50) if a.name == "demo-agent"]
    agent = existing[0] if existing else create_agent(deps, name="demo-agent", actor="authz demo")
    for cred in list_credentials(deps, agent.id):
        if cred.status == "active":
            revoke_credential(deps, agent.id, cred.id, actor="authz demo")
    issued = issue_credential(deps, agent.id, kind="secret", actor="authz demo")
    usage = create_admin_client(
        store, ctx.keyring, ctx.settings, name=USAGE_CLIENT_NAME, scopes=["budgets:use", "metering:write"]
    )
    assert rs.client_secret and issued.secret and usage.client_secret
    return rs.client_id, rs.client_secret, agent.id, issued.secret, usage.client_id, usage.client_secret


def _console_data(ctx: Context, agent_id: str) -> None:
    """A soft daily call budget on the demo agent, so the console's budget pages have a bar to show."""
    from authz.services import budget_service

    store = budget_service(ctx.settings, ctx.store.engine, ctx.keyring).store  # type: ignore[attr-defined]
    if not store.list_budgets("agent", agent_id):
        store.create("agent", agent_id, metric="calls", limit=1000, period="day", hard=False, thresholds=[80])


def _warm_up(issuer: str, resource: str, agent: str, secret: str) -> None:
    """One token and one tool call, so every console page shows something real at once."""
    data = {"grant_type": "client_credentials", "resource": resource, "scope": "tools:read"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    try:
        token = httpx2.post(issuer + "/token", data=data, auth=(agent, secret), timeout=10).json()["access_token"]
        headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
        httpx2.post(resource, json=call, headers=headers, timeout=10)
    except (httpx2.HTTPError, KeyError, ValueError) as exc:
        print(f"authz demo: the warm-up tool call failed ({exc}); the console starts empty", file=sys.stderr)


def _wait_for(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SetupError(f"a demo server exited with status {proc.returncode} before {url} answered (see above)")
        try:
            if httpx2.get(url, timeout=1).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise SetupError(f"{url} did not answer within {timeout:.0f} s")


def check_ports(*ports: int) -> None:
    """Each port free on 127.0.0.1 (and all different), before anything starts. Raises SetupError."""
    if len(set(ports)) != len(ports):
        raise SetupError(f"--port and --mcp-port must differ (both are {ports[0]})")
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise SetupError(
                    f"port {port} on 127.0.0.1 is taken (an earlier `authz demo` still running?): stop it, "
                    "or choose others with --port and --mcp-port"
                ) from None


class _Stop(Exception):
    """SIGINT, SIGTERM or SIGHUP reached the demo: stop both servers and exit 0."""


def _stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if the demo dies without cleaning up (even SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _authz_command() -> str:
    """The absolute path of the `authz` this demo runs from (scripts/demo users have no `authz` on PATH)."""
    beside = Path(sys.executable).parent / "authz"
    return str(beside) if beside.exists() else f"{sys.executable} -m authz"


def run_demo(port: int, mcp_port: int, reset: bool = False) -> int:
    from authz.cli.database import migrate_db

    if not installed("mcp"):
        raise needs_extra("mcp", "authz demo (its MCP server runs on the MCP SDK)")
    check_ports(port, mcp_port)
    issuer = f"http://127.0.0.1:{port}"
    resource = f"http://127.0.0.1:{mcp_port}/mcp"
    data_dir = (Path(os.environ.get("AUTHZ_DATA_DIR", ".authz")) / "demo").resolve()
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
        print(f"authz demo: removed {data_dir} (--reset)", file=sys.stderr)
    env = {
        **os.environ,
        "AUTHZ_ISSUER": issuer,
        "AUTHZ_DATA_DIR": str(data_dir),
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_DYNAMIC_REGISTRATION": "1",
        "AUTHZ_CLIENT_ID_METADATA_DOCUMENTS": "1",
        "AUTHZ_POLICIES": "db",  # the embedded set until the console (or PUT /api/v1/policies) deploys one
    }
    env.pop("AUTHZ_DATABASE_URL", None)
    settings = Settings(issuer=issuer, data_dir=data_dir, dev_mode=True, dynamic_registration=True, database_url="")
    print(f"authz demo: preparing the database in {data_dir} ...", file=sys.stderr)
    migrate_db(settings)
    ctx = build_context(settings)
    ctx.keys.ensure()
    ensure_admin_resource(ctx.store, settings)
    rs_id, rs_secret, agent_id, agent_secret, usage_id, usage_secret = _prepare(ctx, resource)
    billing_demo.seed(ctx.store.engine, ctx.keyring, agent_id)  # type: ignore[attr-defined]
    _console_data(ctx, agent_id)
    ctx.audit.flush()
    record_running_issuer(data_dir, issuer)  # CLI commands on this data dir name this issuer

    procs: list[subprocess.Popen[bytes]] = []
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    spawn: dict[str, Any] = {"preexec_fn": _die_with_parent} if sys.platform == "linux" else {}
    try:
        as_proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "authz", "serve", "--port", str(port), "--no-migrate", "--log-level", "warning"],
            env=env,
            **spawn,
        )
        procs.append(as_proc)
        _wait_for(issuer + "/.well-known/oauth-authorization-server", as_proc)
        rs_env = {
            **env,
            "RS_CLIENT_ID": rs_id,
            "RS_CLIENT_SECRET": rs_secret,
            "RS_BUDGET_CLIENT_ID": usage_id,
            "RS_BUDGET_CLIENT_SECRET": usage_secret,
            "RS_METERING_CLIENT_ID": usage_id,
            "RS_METERING_CLIENT_SECRET": usage_secret,
        }
        demo_args = ["--port", str(mcp_port), "--issuer", issuer, "--mode", "hybrid", "--budget-hook", "--metering"]
        mcp_proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "resource_server.demo", *demo_args], env=rs_env, **spawn
        )
        procs.append(mcp_proc)
        _wait_for(f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp", mcp_proc)
        _warm_up(issuer, resource, agent_id, agent_secret)
        print(_banner(issuer, resource, agent_id, agent_secret, data_dir) + billing_demo.hint(data_dir), flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        gone = next(p for p in procs if p.poll() is not None)
        print(f"authz demo: a server exited with status {gone.returncode}; stopping the other", file=sys.stderr)
        return 1
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        with contextlib.suppress(_Stop, KeyboardInterrupt):  # a second Ctrl-C does not skip the cleanup
            _stop_children(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child still running, SIGKILL any still alive after 10 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _banner(issuer: str, resource: str, agent: str, secret: str, data_dir: Path) -> str:
    authz = _authz_command()
    call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
    return f"""
authz demo is running (Ctrl-C or SIGTERM stops both servers)

  Authorization server  {issuer}
                        development mode: signed in as "demo", consent is automatic
  Admin console         {issuer}/console/
                        signed in as "demo" (an admin): agents, policies, budgets, usage, audit
  Demo MCP server       {resource}
                        tools: whoami, add (tools:read) · write_note (tools:write) · admin_reset (tools:admin)

Try it:
  # 1. No token: 401 with a challenge naming the metadata and the scope
  curl -si -X POST {resource} -H 'content-type: application/json' -d '{call}' | grep -i -e '^HTTP' -e www-authenticate

  # 2. An agent token for this MCP server (client_credentials; the secret is new at every start)
  TOKEN=$(curl -s -u {agent}:{secret} -d grant_type=client_credentials -d resource={resource} \\
          -d scope=tools:read {issuer}/token | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')

  # 3. Call a tool with it
  curl -s -X POST {resource} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -H 'accept: application/json, text/event-stream' -d '{call}'

  # 4. Budgets and usage: every call is metered; give the agent a hard budget of 5 calls a day and
  #    the sixth call gets 429 with Retry-After
  AUTHZ_DATA_DIR={data_dir} {authz} budgets create --agent {agent} --metric calls --limit 5 --period day
  AUTHZ_DATA_DIR={data_dir} {authz} usage --group-by tool --granularity day

  # 5. Any MCP client (e.g. MCP Inspector) pointed at {resource} discovers this server, registers
  #    (client ID metadata document or dynamic registration) and signs in with OAuth + PKCE.

State (database, keys, agents, budgets) is kept in {data_dir} between runs;
`{authz} demo --reset` starts afresh.
"""
