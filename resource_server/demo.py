"""A demo MCP server protected by the middleware.

    python -m resource_server.demo --port 9200 --issuer http://127.0.0.1:9100 \
        [--mode jwt|introspection|hybrid] [--client-id ID --client-secret SECRET]

Tools and the scopes they need: ``whoami`` and ``add`` (``tools:read``), ``write_note``
(``tools:write``), ``admin_reset`` (``tools:admin``). ``tools:admin`` implies ``tools:write``,
which implies ``tools:read``. In ``jwt`` mode (the default) no client credentials are needed.

``--budget-hook`` enforces the AS's budgets on every token use (:class:`resource_server.budget.BudgetHook`):
the server leases budget slices at the AS's admin API as the client ``--budget-client-id``/``--budget-client-secret``
(env ``RS_BUDGET_CLIENT_ID``/``RS_BUDGET_CLIENT_SECRET``; ``authz admin-client create --scopes budgets:use``);
``--budget-lease-max 1`` reserves per call instead.

``--metering`` reports a ``call.completed`` event per token use to the AS's metering API
(``POST {issuer}/api/v1/metering/events``) with :class:`resource_server.usage.UsageReporter`, as a
client with the ``metering:write`` scope (``authz admin-client create --scopes metering:write``):
``--metering-client-id``/``--metering-client-secret`` or env ``RS_METERING_CLIENT_ID`` /
``RS_METERING_CLIENT_SECRET``; ``--metering-interval`` (seconds, default 1) is the shipping cadence.
What is still queued is shipped on shutdown. With ``--budget-hook`` too, both run
(:class:`resource_server.hooks.CompositeHook`: the budget first, metering after every admitted call).

With client credentials (any mode, ``jwt`` included) the server also consumes the AS's Shared Signals
revocation stream (``ResourceServerConfig.revocation_signals``): a suspended agent, a revoked token, grant
or client is refused at once instead of after the cache bound. ``--no-revocation-signals`` turns it off.

``--conformance-fixtures`` adds the few fixtures of the official MCP conformance suite's
"everything server" that cost nothing (a text tool, text/binary/template resources, two prompts;
all need the default ``tools:read``), so ``conformance/run_server_suite.py`` can exercise
``tools/call``, ``resources/read`` and ``prompts/get`` through the middleware. Off by default.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import uvicorn
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.logredact import uvicorn_log_config
from resource_server.budget import BudgetHook
from resource_server.context import current_request_context, current_token, record_usage
from resource_server.hooks import CompositeHook, TokenUseHook
from resource_server.mcp import protect_mcp_app
from resource_server.scopes import ScopePolicy
from resource_server.settings import Mode, ResourceServerConfig
from resource_server.usage import UsageReporter, with_reporter_lifespan

__all__ = ["DEMO_SCOPES", "build_app", "build_server", "main"]

DEMO_SCOPES = ScopePolicy.build(
    default=["tools:read"],
    tools={
        "whoami": ["tools:read"],
        "add": ["tools:read"],
        "write_note": ["tools:write"],
        "admin_reset": ["tools:admin"],
    },
    implies={"tools:admin": ["tools:write"], "tools:write": ["tools:read"]},
)


def build_server(*, conformance_fixtures: bool = False) -> MCPServer:
    server = MCPServer("authz-demo")
    notes: list[str] = []

    @server.tool()
    def whoami() -> dict[str, Any]:
        """Who is calling: subject, client, agent and delegation chain of the access token."""
        token = current_token()
        sdk = get_access_token()
        return {
            "subject": token.subject,
            "client_id": token.client_id,
            "agent": token.agent,
            "team": token.team,
            "workflow": token.workflow,
            "act": dict(token.act) if token.act is not None else None,
            "actors": list(token.actors()),
            "scopes": sorted(token.scopes),
            "sdk_subject": sdk.subject if sdk is not None else None,
            "sdk_client_id": sdk.client_id if sdk is not None else None,
        }

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        if current_request_context() is not None:  # unprotected (benchmark baseline): nothing to meter
            record_usage(calls=1)
        return a + b

    @server.tool()
    def write_note(text: str) -> int:
        """Store a note; returns how many notes exist."""
        notes.append(text)
        return len(notes)

    @server.tool()
    def admin_reset() -> str:
        """Forget every note."""
        notes.clear()
        return "reset"

    if conformance_fixtures:
        add_conformance_fixtures(server)
    return server


def add_conformance_fixtures(server: MCPServer) -> None:
    """Fixtures named by the official conformance suite's server scenarios (no auth semantics)."""

    @server.tool()
    def test_simple_text() -> str:
        """Conformance fixture: a simple text result."""
        return "This is a simple text response for testing."

    @server.resource("test://static-text", name="static-text", mime_type="text/plain")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", name="static-binary", mime_type="image/png")
    def static_binary() -> bytes:
        return base64.b64decode(_PNG_1X1)

    @server.resource("test://template/{id}/data", name="template", mime_type="application/json")
    def template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.prompt()
    def test_simple_prompt() -> str:
        """Conformance fixture: a prompt without arguments."""
        return "This is a simple prompt for testing."

    @server.prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
        """Conformance fixture: a prompt with two arguments."""
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


_PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def build_app(
    config: ResourceServerConfig,
    *,
    hook: TokenUseHook | None = None,
    stateless: bool = True,
    json_response: bool = False,
    host: str = "127.0.0.1",
    conformance_fixtures: bool = False,
) -> ASGIApp:
    """The demo's ASGI app: the SDK's Streamable HTTP app inside our middleware."""
    inner = build_server(conformance_fixtures=conformance_fixtures).streamable_http_app(
        stateless_http=stateless, json_response=json_response, host=host
    )
    return protect_mcp_app(inner, config, hook=hook)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m resource_server.demo", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9200)
    p.add_argument("--issuer", required=True, help="the AS issuer, exactly as in its metadata")
    p.add_argument("--resource", help="canonical resource URI (default http://HOST:PORT/mcp)")
    p.add_argument("--mode", choices=["jwt", "introspection", "hybrid"], default="jwt")
    p.add_argument("--client-id", default=os.environ.get("RS_CLIENT_ID"))
    p.add_argument("--client-secret", default=os.environ.get("RS_CLIENT_SECRET"), help="or env RS_CLIENT_SECRET")
    p.add_argument(
        "--no-revocation-signals",
        action="store_true",
        help="do not consume the AS's revocation stream (on by default when client credentials are given)",
    )
    p.add_argument("--stateful", action="store_true", help="keep MCP sessions (default: stateless)")
    p.add_argument("--json-response", action="store_true", help="answer POSTs with JSON instead of SSE")
    p.add_argument(
        "--budget-hook", action="store_true", help="enforce the AS's budgets (lease budget slices, settle after)"
    )
    p.add_argument("--budget-client-id", default=os.environ.get("RS_BUDGET_CLIENT_ID"))
    p.add_argument(
        "--budget-client-secret",
        default=os.environ.get("RS_BUDGET_CLIENT_SECRET"),
        help="or env RS_BUDGET_CLIENT_SECRET",
    )
    p.add_argument("--budget-fail-open", action="store_true", help="admit calls when the AS cannot be reached")
    p.add_argument(
        "--budget-lease-max",
        type=int,
        default=64,
        help="most uses one budget lease covers (default 64; 1 = one reservation per use, no leasing)",
    )
    p.add_argument("--metering", action="store_true", help="report usage events to the AS (needs a metering client)")
    p.add_argument("--metering-client-id", default=os.environ.get("RS_METERING_CLIENT_ID"))
    p.add_argument(
        "--metering-client-secret",
        default=os.environ.get("RS_METERING_CLIENT_SECRET"),
        help="or env RS_METERING_CLIENT_SECRET",
    )
    p.add_argument("--metering-interval", type=float, default=1.0, help="seconds between shipments (default 1)")
    p.add_argument(
        "--conformance-fixtures", action="store_true", help="add the official conformance suite's simple fixtures"
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="uvicorn's, the MCP SDK's and httpx2's log level (default info: an access and an SDK line per request)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    mode: Mode = args.mode
    config = ResourceServerConfig(
        resource=args.resource or f"http://{args.host}:{args.port}/mcp",
        issuer=args.issuer,
        client_id=args.client_id,
        client_secret=args.client_secret,
        mode=mode,
        scope_policy=DEMO_SCOPES,
        resource_name="authz demo MCP server",
        revocation_signals=bool(args.client_id and args.client_secret) and not args.no_revocation_signals,
    )
    hook: BudgetHook | None = None
    if args.budget_hook:
        if not (args.budget_client_id and args.budget_client_secret):
            raise SystemExit("--budget-hook needs --budget-client-id and --budget-client-secret (scope budgets:use)")
        hook = BudgetHook(
            args.issuer,
            args.budget_client_id,
            args.budget_client_secret,
            fail_closed=not args.budget_fail_open,
            lease_max=args.budget_lease_max,
        )
    reporter: UsageReporter | None = None
    if args.metering:
        if not (args.metering_client_id and args.metering_client_secret):
            raise SystemExit("--metering needs --metering-client-id and --metering-client-secret (or RS_METERING_*)")
        reporter = UsageReporter(
            issuer=args.issuer,
            resource=config.resource,
            client_id=args.metering_client_id,
            client_secret=args.metering_client_secret,
            flush_interval=args.metering_interval,
        )
    hooks: list[TokenUseHook] = [h for h in (hook, reporter) if h is not None]
    app = build_app(
        config,
        hook=hooks[0] if len(hooks) == 1 else CompositeHook(*hooks) if hooks else None,
        stateless=not args.stateful,
        json_response=args.json_response,
        host=args.host,
        conformance_fixtures=args.conformance_fixtures,
    )
    if hook is not None:
        app = _close_on_shutdown(app, hook)
    if reporter is not None:
        app = with_reporter_lifespan(app, reporter)  # ship what is still queued on shutdown
    # The access log redacts credential query parameters (a refused ?access_token= was logged in full).
    # The SDK installs a rich root handler: at info it renders a line per request, and httpx2 one per
    # call this server makes to the AS (budget leases and settles, metering shipments, introspection).
    for name in ("mcp", "httpx2"):
        logging.getLogger(name).setLevel(args.log_level.upper())
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, log_config=uvicorn_log_config())


def _close_on_shutdown(app: ASGIApp, hook: BudgetHook) -> ASGIApp:
    """Send the queued settles and close the hook's HTTP client when the server stops."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await hook.aclose()
            return message

        await app(scope, lifespan_receive, send)

    return wrapped


if __name__ == "__main__":
    main()
