"""The SDK's surface against the server's OpenAPI document, and every SDK method against a live server.

Each surface method is tagged with the operation(s) it calls (``@operation("POST /agents")``). The
first test fails on an operation of ``/api/v1/openapi.json`` no method is tagged with (a missing
method) and on a tag naming no operation (a stale one). The second runs the scenarios of
``_scenarios`` and fails unless every tagged SDK method and every operation was called for real.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any

import httpx2
import pytest

from agent_client.sdk import AsyncClient, Client
from agent_client.sdk.client import Json
from agent_client.sdk.resources import Surface, operations_of
from tests.agent_client import _scenarios
from tests.agent_client.conftest import Live

DOCUMENT_ITSELF = "GET /openapi.json"  # the OpenAPI document is read by this test, not wrapped by the SDK


PARAM = re.compile(r"\{[^}]*\}")


def _key(method: str, path: str) -> str:
    return f"{method.upper()} {PARAM.sub('{}', path)}"


def _openapi_operations(live: Live) -> set[str]:
    doc = httpx2.get(f"{live.issuer}/api/v1/openapi.json", timeout=10).json()
    return {
        _key(m, p) for p, item in doc["paths"].items() for m in item if m in ("get", "post", "put", "patch", "delete")
    }


def _surfaces(root: object, prefix: str = "") -> Iterator[tuple[str, Surface[Any]]]:
    for name, value in vars(root).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Surface):
            yield prefix + name, value
        if isinstance(value, Surface) or type(value).__module__.startswith("agent_client.sdk.resources"):
            yield from _surfaces(value, f"{prefix}{name}.")


def _tagged_methods(client: object) -> dict[str, tuple[str, ...]]:
    """``{"agents.create": ("POST /agents",), ...}`` over every surface of ``client``."""
    out: dict[str, tuple[str, ...]] = {}
    for path, surface in _surfaces(client):
        for attr in dir(type(surface)):
            keys = operations_of(getattr(type(surface), attr))
            if keys:
                out[f"{path}.{attr}"] = keys
    return out


def test_every_openapi_operation_has_an_sdk_method_and_no_tag_is_stale(live: Live) -> None:
    operations = _openapi_operations(live) - {DOCUMENT_ITSELF}
    with Client(live.issuer, api_key=live.token) as client:
        tagged = _tagged_methods(client)
    covered = {key for keys in tagged.values() for key in keys}
    assert sorted(operations - covered) == [], "operations without an SDK method"
    assert sorted(covered - operations) == [], "SDK methods tagged with no operation of the server"
    assert len(tagged) >= len(operations) - 5  # a few methods serve several owners (budgets on agent/team/workflow)


def test_async_client_has_the_same_surface(live: Live) -> None:
    sync = Client(live.issuer, api_key=live.token)
    asynchronous = AsyncClient(live.issuer, api_key=live.token)
    assert _tagged_methods(asynchronous) == _tagged_methods(sync)
    sync.close()


class _Recording(Client):
    """A client recording each SDK method (by its code object on the stack) and each operation it sends."""

    def __init__(self, *args: Any, codes: Mapping[object, str], templates: set[str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.codes, self.templates = codes, templates
        self.methods: set[str] = set()
        self.operations: set[str] = set()

    def request(self, method: str, path: str, **kw: Any) -> Json:
        frame: FrameType | None = sys._getframe(1)
        for _ in range(4):  # the method itself, or a shared helper of it (Licenses._change)
            if frame is None:
                break
            if frame.f_code in self.codes:
                self.methods.add(self.codes[frame.f_code])
                break
            frame = frame.f_back
        self.operations.add(_template(self.templates, method, path.split("?")[0]))
        return super().request(method, path, **kw)


def _template(templates: set[str], method: str, path: str) -> str:
    """The operation a concrete request is (a literal segment beats a parameter: /licenses/me)."""
    best, score = f"{method} {path}", -1
    for key in templates:
        m, template = key.split(" ", 1)
        parts, concrete = template.strip("/").split("/"), path.strip("/").split("/")
        if m != method or len(parts) != len(concrete):
            continue
        if all(p == "{}" or p == c for p, c in zip(parts, concrete, strict=True)):
            literal = sum(p != "{}" for p in parts)
            if literal > score:
                best, score = key, literal
    return best


@pytest.fixture
def recording(live: Live) -> Iterator[_Recording]:
    with Client(live.issuer, api_key=live.token) as probe:
        tagged = _tagged_methods(probe)
        codes: dict[object, str] = {}
        for name, _ in tagged.items():
            owner: object = probe
            *parts, attr = name.split(".")
            for part in parts:
                owner = getattr(owner, part)
            codes[getattr(type(owner), attr).__code__] = name
    client = _Recording(live.issuer, api_key=live.token, codes=codes, templates=_openapi_operations(live))
    try:
        yield client
    finally:
        client.close()


def test_every_sdk_method_and_operation_against_the_live_server(live: Live, recording: _Recording) -> None:
    for scenario in _scenarios.SCENARIOS:
        scenario(recording, live.user_id)
    with Client(live.issuer, api_key=live.token) as probe:
        tagged = _tagged_methods(probe)
    assert sorted(set(tagged) - recording.methods) == [], "SDK methods no scenario called"
    missing = _openapi_operations(live) - {DOCUMENT_ITSELF} - recording.operations
    assert sorted(missing) == [], "operations no scenario called"
