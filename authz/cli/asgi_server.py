"""The HTTP server under ``authz serve``: uvicorn (httptools, uvloop) or granian (Rust: hyper on tokio).

Both run the same ASGI app (``authz.asgi:create``, built in each worker from the ``AUTHZ_*``
environment) with the same behaviour where it matters to the server:

- **lifespan**: the app's startup and shutdown run in every worker (the audit writer's final flush,
  the metering flusher, the change-feed follower); a failed startup stops the server.
- **graceful shutdown**: SIGTERM or SIGINT stops accepting connections, lets requests in flight
  finish, then runs the lifespan shutdown of every worker before the process exits.
- **workers**: ``--workers N`` processes share one listening socket.
- **proxy headers**: with ``trust_forwarded_proto`` the ``X-Forwarded-Proto`` and ``X-Forwarded-For``
  of a connection from ``FORWARDED_ALLOW_IPS`` (default ``127.0.0.1,::1``) are trusted. Both servers use
  uvicorn's own ``ProxyHeadersMiddleware`` for it, so the rules are the same byte for byte.
- **access log**: off unless asked for; credential query parameters are redacted either way
  (:mod:`guard.logredact`).

granian is an optional dependency (the ``granian`` extra); uvicorn is always installed.
"""

from __future__ import annotations

import copy
from typing import Any

SERVERS = ("uvicorn", "granian")
APP_FACTORY = "authz.asgi:create"
PROXIED_APP_FACTORY = "authz.asgi:create_behind_proxy"


def run(
    server: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool,
    proxy_headers: bool,
) -> None:
    """Serve the app with ``server`` until SIGTERM/SIGINT; returns after the graceful shutdown."""
    if server == "granian":
        run_granian(
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            proxy_headers=proxy_headers,
        )
    elif server == "uvicorn":
        run_uvicorn(
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            proxy_headers=proxy_headers,
        )
    else:
        raise SystemExit(f"authz serve: unknown server {server!r} (one of {', '.join(SERVERS)})")


def run_uvicorn(*, host: str, port: int, workers: int, log_level: str, access_log: bool, proxy_headers: bool) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=uvicorn_log_config(log_level),  # redacts credential query parameters; authz loggers shown
        access_log=access_log,
        proxy_headers=proxy_headers,
    )


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging with credentials redacted from the access log, plus the ``authz`` loggers
    (policy refusals, the startup's policy line) on the same handler."""
    from guard.logredact import uvicorn_log_config as base

    config = base()
    config["loggers"]["authz"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


# The access line of uvicorn's format: client, request line (path with its query, credentials
# redacted by guard.logredact), protocol, status.
GRANIAN_ACCESS_FORMAT = '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


def run_granian(*, host: str, port: int, workers: int, log_level: str, access_log: bool, proxy_headers: bool) -> None:
    import multiprocessing

    from granian.constants import Interfaces, Loops  # not installed: authz.preflight.explain says which extra
    from granian.log import LogLevels
    from granian.server import Server

    # Workers start afresh, as uvicorn's do: a forked worker would inherit this process's database
    # connections (migrations, preflight) and whatever its threads held.
    multiprocessing.set_start_method("spawn", force=True)
    Server(
        PROXIED_APP_FACTORY if proxy_headers else APP_FACTORY,
        address=host,
        port=port,
        interface=Interfaces.ASGI,  # with lifespan
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        log_level=LogLevels(log_level),
        log_dictconfig=granian_log_config(log_level),
        log_access=access_log,
        log_access_format=GRANIAN_ACCESS_FORMAT,
        websockets=False,  # authz serves no WebSocket route
    ).serve()


def granian_log_config(level: str) -> dict[str, Any]:
    """granian's logging on stderr (as uvicorn's), the redaction filter on its access logger, and the
    ``authz`` loggers on the same handler."""
    from granian.log import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["console"]["stream"] = "ext://sys.stderr"
    config.setdefault("filters", {})["redact_credentials"] = {"()": "guard.logredact.RedactCredentials"}
    config["loggers"]["granian.access"]["filters"] = ["redact_credentials"]
    config["loggers"]["authz"] = {"handlers": ["console"], "level": level.upper(), "propagate": False}
    return config
