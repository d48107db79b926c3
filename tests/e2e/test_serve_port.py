"""``authz serve --port P`` without AUTHZ_ISSUER: in development the issuer follows the port (it used to
advertise :9100 whatever the port), and the startup line names the issuer and the policy set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx2

from tests.e2e._processes import Processes, base_env, processes, wait_http, wait_until  # noqa: F401  (fixture)


def test_the_default_issuer_follows_the_port(
    processes: Processes,  # noqa: F811
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = processes.start(
        "authz-serve", ["-m", "authz", "serve", "--port", str(port)], base_env(AUTHZ_DATA_DIR=str(tmp_path / "d"))
    )
    wait_http(f"{url}/.well-known/oauth-authorization-server", server)
    metadata = httpx2.get(f"{url}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == url and metadata["token_endpoint"] == f"{url}/token"
    wait_until(lambda: "policies: builtin" in server.log(), "the startup line", 30, server)
    assert f"authz: issuer {url} on {url}; policies: builtin (8 policies" in server.log()
    assert (tmp_path / "d" / "issuer").read_text().strip() == url
