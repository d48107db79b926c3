"""Hypothesis over the OAuth endpoints and the resource server middleware: no 5xx, ever, and a refusal
changes no row (the audit trail, which records refusals, aside).

In process and deterministic: one app per module on an anyio portal (:mod:`tests.fuzz.live`),
hypothesis derandomized with a bounded number of examples per property.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.live import REDIRECT, RESOURCE, Live, live_server

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
RECORDS_REFUSALS = ("audit_", "subject_pseudonyms")  # the audit trail writes down refusals, by design

HOSTILE = st.sampled_from(['"', "\\", "é", "\n", "\r\n", "\x00", "%", "&", "=", "#", " ", "[" * 50, "\u202e"])
TEXT = st.one_of(st.text(max_size=40), st.builds(lambda a, b: a + b, st.text(max_size=10), HOSTILE))


def _value(valid: list[str]) -> st.SearchStrategy[str]:
    """A valid value, a valid value with a hostile suffix, or arbitrary text."""
    good = st.sampled_from(valid)
    return st.one_of(good, st.builds(lambda v, h: v + h, good, HOSTILE), TEXT)


AUTHORIZE = st.fixed_dictionaries(
    {},
    optional={
        "response_type": _value(["code", "token", "code id_token"]),
        "client_id": _value(["public-app", "agent-1", "https://client.example/doc.json"]),
        "redirect_uri": _value([REDIRECT, "https://evil.example/cb"]),
        "state": _value(["st-1"]),
        "scope": _value(["tools:read", "tools:read tools:write", "admin:write"]),
        "resource": _value([RESOURCE, "http://127.0.0.1:9300/mcp"]),
        "code_challenge": _value(["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]),
        "code_challenge_method": _value(["S256", "plain"]),
        "prompt": TEXT,
    },
)
TOKEN = st.fixed_dictionaries(
    {"grant_type": _value(["authorization_code", "refresh_token", "client_credentials",
                           "urn:ietf:params:oauth:grant-type:token-exchange",
                           "urn:ietf:params:oauth:grant-type:jwt-bearer"])},
    optional={
        "code": TEXT, "redirect_uri": _value([REDIRECT]), "client_id": _value(["public-app", "agent-1"]),
        "client_secret": TEXT, "refresh_token": TEXT, "scope": _value(["tools:read"]),
        "resource": _value([RESOURCE]), "code_verifier": TEXT, "subject_token": TEXT,
        "subject_token_type": _value(["urn:ietf:params:oauth:token-type:access_token"]), "assertion": TEXT,
        "client_assertion": TEXT,
        "client_assertion_type": _value(["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]),
    },
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
REGISTER = st.fixed_dictionaries(
    {},
    optional={
        "redirect_uris": st.one_of(st.lists(_value([REDIRECT, "https://app.example/cb"]), max_size=3), JSON),
        "token_endpoint_auth_method": _value(["none", "client_secret_basic", "private_key_jwt"]),
        "grant_types": st.one_of(st.lists(_value(["authorization_code", "client_credentials"]), max_size=3), JSON),
        "response_types": st.one_of(st.lists(_value(["code"]), max_size=2), JSON),
        "client_name": st.one_of(TEXT, JSON),
        "client_uri": _value(["https://app.example/", "javascript:alert(1)"]),
        "logo_uri": _value(["https://app.example/logo.png", "data:image/png;base64,AA"]),
        "jwks": JSON,
        "jwks_uri": _value(["https://app.example/jwks"]),
        "scope": st.one_of(TEXT, JSON),
        "application_type": _value(["web", "native"]),
    },
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


TOKENS = st.one_of(
    TEXT,
    st.builds(lambda h, p: f"{_b64(json.dumps(h).encode())}.{_b64(json.dumps(p).encode())}.{_b64(b'sig')}", JSON, JSON),
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(Path(tmp_path_factory.mktemp("hypothesis")), dynamic_registration=True) as server:
        yield server


def _state(live: Live) -> dict[str, int]:
    return {name: n for name, n in live.rows().items() if not name.startswith(RECORDS_REFUSALS)}


def _refused(response: httpx2.Response) -> bool:
    return response.status_code >= 400 or "error=" in response.headers.get("location", "")


@FUZZ
@given(params=AUTHORIZE)
def test_authorize_never_fails_and_a_refusal_changes_nothing(live: Live, params: dict[str, str]) -> None:
    before = _state(live)
    r = live.request("GET", "/authorize", params=params)
    assert r.status_code < 500, (params, r.text)
    assert _state(live) == before  # no development mode: nothing is issued before sign-in


@FUZZ
@given(form=TOKEN, auth=st.sampled_from(["none", "machine", "wrong", "public"]))
def test_token_never_fails_and_a_refusal_changes_nothing(live: Live, form: dict[str, str], auth: str) -> None:
    before = _state(live)
    kwargs: dict[str, Any] = {}
    if auth == "machine":
        kwargs["auth"] = (live.machine.client_id, live.machine.client_secret or "")
    elif auth == "wrong":
        kwargs["auth"] = (live.machine.client_id, "not-the-secret")
    elif auth == "public":
        form = {**form, "client_id": live.public.client_id}
    r = live.request("POST", "/token", data=form, **kwargs)
    assert r.status_code < 500, (form, auth, r.text)
    if _refused(r):
        assert _state(live) == before, (form, r.text)


@FUZZ
@given(meta=st.one_of(REGISTER, JSON))
def test_register_never_fails_and_a_refusal_changes_nothing(live: Live, meta: Any) -> None:
    before = _state(live)
    r = live.request("POST", "/register", json=meta)
    assert r.status_code < 500, (meta, r.text)
    if r.status_code >= 400:
        assert r.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
        assert _state(live) == before, meta
    else:
        assert r.status_code == 201


@FUZZ
@given(token=TOKENS, hint=st.one_of(st.none(), _value(["access_token", "refresh_token"])), path=st.sampled_from(
    ["/introspect", "/revoke"]), auth=st.booleans())  # fmt: skip
def test_introspect_and_revoke_never_fail_and_change_nothing(
    live: Live, token: str, hint: str | None, path: str, auth: bool
) -> None:
    before = _state(live)
    form = {"token": token, **({"token_type_hint": hint} if hint is not None else {})}
    kwargs: dict[str, Any] = {"auth": (live.rs.client_id, live.rs.client_secret or "")} if auth else {}
    r = live.request("POST", path, data=form, **kwargs)
    assert r.status_code < 500, (path, form, r.text)
    if path == "/introspect" and auth and r.status_code == 200:
        assert r.json() == {"active": False}
    assert _state(live) == before  # no fuzzed token is one of ours
