"""The OpenAPI document describes every admin route, and every documented route exists."""

from __future__ import annotations

import pytest
from starlette.routing import Mount, Route

from authz.admin.bootstrap import ADMIN_SCOPES
from tests.authz.conftest import AS

pytestmark = pytest.mark.anyio


# POSTs that change nothing (a body too rich for a query string): admin:read suffices
READ_ONLY_POSTS = {("post", "/policies/test")}


def _served_routes(server: AS) -> set[tuple[str, str]]:
    mounts = [r for r in server.app.routes if isinstance(r, Mount) and r.path == "/api/v1"]
    assert len(mounts) == 1
    served = set()
    for route in mounts[0].routes:
        assert isinstance(route, Route)
        served |= {(m.lower(), route.path) for m in (route.methods or ()) if m != "HEAD"}
    return served


async def test_every_route_is_documented_and_every_documented_route_exists(authz: AS) -> None:
    r = await authz.http.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "http://127.0.0.1:9100/api/v1"}]
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == _served_routes(authz)
    assert len(documented) >= 15


async def test_operations_are_complete(authz: AS) -> None:
    doc = (await authz.http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    refs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(doc)
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    ids = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ids.add(op["operationId"])
            params = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (method, path)
            if path == "/openapi.json":
                continue
            if op["security"] == [] or "licenseKey" in op["security"][0]:  # client-facing licensing endpoints
                assert path.startswith(("/licenses/", "/machines/")), (method, path)
                assert any(s.startswith("2") for s in op["responses"]), (method, path)
                if method == "post":
                    assert "requestBody" in op and "422" in op["responses"], (method, path)
                continue
            (scope,) = op["security"][0]["oauth2"]
            assert scope in ADMIN_SCOPES, (method, path)
            if scope.startswith("admin:"):
                reads = method == "get" or (method, path) in READ_ONLY_POSTS
                assert scope == ("admin:read" if reads else "admin:write"), (method, path)
            assert {"401", "403"} <= op["responses"].keys()
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert len(ok) == 1, (method, path)
            if ok[0] != "204":
                assert "application/json" in op["responses"][ok[0]]["content"], (method, path)
            if method in ("post", "patch", "put"):
                assert "requestBody" in op and "422" in op["responses"], (method, path)
    assert len(ids) == sum(len(item) for item in doc["paths"].values())  # unique operation ids
    assert "IssuedCredential" in schemas and "secret" in schemas["IssuedCredential"]["properties"]
    assert "secret" not in schemas["CredentialOut"]["properties"]
