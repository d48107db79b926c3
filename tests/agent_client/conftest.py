"""Fixtures of ``tests/agent_client``: the in-process AS of ``tests/authz`` (``as_factory``, ``authz``), and
``live``: one real ``authz serve`` subprocess with an admin API token holding every admin scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.authz.conftest import anyio_backend, as_factory, authz
from tests.live_admin import Live, live_admin_server

__all__ = ["RESOURCE", "Live", "anyio_backend", "as_factory", "authz", "live"]

RESOURCE = "https://mcp.sdk.example/mcp"  # a registered resource (the oversight rules name one)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A running server (SQLite) and an admin API access token with every admin scope."""
    with live_admin_server(
        Path(tmp_path_factory.mktemp("sdk")), resource=RESOURCE, client_name="sdk-test", username="sdk-subject"
    ) as live:
        yield live
