"""Console fixtures: the in-process AS (no development mode) with alice (admin), olga (operator),
victor (viewer) and nadia (no role), and a signed-in console session helper."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
import pytest

from authz.identity.users import create_user
from tests.authz.conftest import AS, ASFactory

PASSWORD = "correct horse battery"
ROLES = "alice=admin,olga=operator,victor=viewer"


@dataclass
class Console:
    authz: AS
    http: httpx2.AsyncClient
    username: str
    csrf: str

    async def get(self, path: str, **kw: object) -> httpx2.Response:
        return await self.http.get("/console" + path, **kw)  # type: ignore[arg-type]

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx2.Response:
        return await self.http.post("/console" + path, data={"csrf_token": self.csrf, **(data or {})})


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


async def sign_in(authz: AS, username: str) -> httpx2.Response:
    """Drive the real flow: /console/login -> /authorize (login form) -> /callback -> the overview."""
    http = authz.http
    r = await http.get("/console/login")
    assert r.status_code == 303
    r = await http.get(r.headers["location"])
    assert r.status_code == 200 and "password" in r.text, r.text[:300]
    form = {
        "request": re.search(r'name="request" value="([^"]*)"', r.text).group(1).replace("&amp;", "&"),  # type: ignore[union-attr]
        "csrf_token": csrf_of(r.text),
        "username": username,
        "password": PASSWORD,
    }
    r = await http.post("/authorize/login", data=form)
    assert r.status_code == 303, r.text[:300]
    while r.status_code in (302, 303):
        location = r.headers["location"]
        parts = urlsplit(location)
        r = await http.get(parts.path + ("?" + parts.query if parts.query else ""))
    return r


ConsoleFactory = Callable[[str], Awaitable[Console]]


@pytest.fixture
async def console_as(as_factory: ASFactory) -> AS:
    authz = await as_factory(dev_mode=False, console_roles=ROLES)
    for name in ("olga", "victor", "nadia"):
        authz.users[name] = create_user(authz.ctx.store, name, PASSWORD)
    alice = authz.users["alice"]
    assert alice is not None
    return authz


@pytest.fixture
def console_for(console_as: AS) -> ConsoleFactory:
    async def make(username: str) -> Console:
        http = httpx2.AsyncClient(transport=console_as.http._transport, base_url=str(console_as.http.base_url))
        authz = AS(console_as.app, http, console_as.rs, console_as.other_rs, console_as.settings, console_as.users)
        r = await sign_in(authz, username)
        assert r.status_code == 200, r.text[:500]
        return Console(authz, http, username, csrf_of(r.text))

    return make
