"""The TypeScript SDK (``sdk/typescript``): generated types current, every operation mapped, and its
Node 22 test suite (``node --test``) green against a live ``authz serve``.

The live test builds the package with ``tsc``, starts a server (SQLite, policies in the database),
creates an admin API client with every admin scope and a local user (for the data-subject calls),
and runs ``sdk/typescript/test/live.test.ts`` with the base URL and the token in the environment;
that suite calls every operation of the server's OpenAPI document through the SDK and fails on any
it did not exercise. Any failure prints the TAP output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from authz.admin.openapi import document
from authz.admin.routes import OPERATIONS
from authz.core.settings import Settings
from tests.live_admin import Live, live_admin_server
from tests.sdk_typescript._node import ROOT, SDK, build, node22, node_test

RESOURCE = "http://127.0.0.1:9/mcp"  # registered, never called: the subject of oversight rules
GENERATOR = ROOT / "scripts" / "sdk_ts_types.py"


def test_generated_types_match_the_server_document() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr  # the message names the one-line command that regenerates


def test_every_operation_has_an_sdk_method_and_no_entry_is_stale() -> None:
    source = (SDK / "src" / "operations.ts").read_text()
    mapped = dict(re.findall(r"^  (\w+): \"([\w.]+)\",$", source, re.MULTILINE))
    ops = {op["operationId"] for item in document(Settings(), OPERATIONS)["paths"].values() for op in item.values()}
    assert sorted(ops - mapped.keys()) == [], "operations without an SDK method in sdk/typescript/src/operations.ts"
    assert sorted(mapped.keys() - ops) == [], "stale entries in sdk/typescript/src/operations.ts"
    client = (SDK / "src" / "client.ts").read_text()
    docs = (ROOT / "docs" / "sdk-typescript.md").read_text()
    for op, path in mapped.items():  # each names a surface the Client builds (resolved for real in live.test.ts)
        assert path.split(".")[0] in client, (op, path)
        assert f"| `{path}` |" in docs and f"| `{op}` |" in docs, f"docs/sdk-typescript.md lacks {path} ({op})"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_admin_server(
        Path(tmp_path_factory.mktemp("sdkts")), resource=RESOURCE, client_name="sdk-ts", username="ts-subject"
    ) as live:
        yield live


@pytest.mark.timeout(900)
def test_node_suite_against_the_live_server(live: Live) -> None:
    node = node22()
    build(node)
    env = {
        "AUTHZ_BASE_URL": live.server.issuer,
        "AUTHZ_ADMIN_TOKEN": live.token,
        "AUTHZ_SUBJECT_ID": live.user_id,
        "AUTHZ_RESOURCE_URI": RESOURCE,
    }
    done = node_test(node, ["build/test/live.test.js", "build/test/retry.test.js", "build/test/metering.test.js"], env)
    assert done.returncode == 0, done.stdout + done.stderr + "\n--- server log ---\n" + live.server.log()[-4000:]
    assert re.search(r"^# fail 0$", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^# pass [1-9]", done.stdout, re.MULTILINE), done.stdout
