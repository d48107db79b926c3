"""The Python admin SDK verifies signed licensing answers against a live ``authz serve``.

Every key-side call (``licenses.validate``, ``me``, ``activate``, ``heartbeat``, ``deactivate``,
``checkout(key=)``) sends a fresh nonce and returns its answer only once the ``Authz-Signature`` (by
the key its ``keyid`` names), the echoed nonce and the age check out: a tampered, unsigned, replayed
or foreign-key answer raises ``LicenseError``. The keys are pinned or fetched once per client.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_client.sdk import AsyncClient, Client, LicenseError, SignedAnswers
from tests.agent_client.conftest import Live

Edit = Callable[[bytes, httpx2.Headers], bytes]


class _EditValidate(httpx2.BaseTransport):
    """The real network, with the answers of ``validate-key`` passed through ``edit`` (an attacker)."""

    def __init__(self, edit: Edit) -> None:
        self.inner, self.edit, self.paths = httpx2.HTTPTransport(), edit, list[str]()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(request.url.path)
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/licenses/actions/validate-key"):
            return response
        body, headers = response.read(), httpx2.Headers(response.headers)
        response.close()
        body = self.edit(body, headers)
        headers.pop("content-length", None)
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request)

    def close(self) -> None:
        self.inner.close()


def _same(body: bytes, headers: httpx2.Headers) -> bytes:
    return body


@pytest.fixture(scope="module")
def licensed(live: Live) -> Iterator[tuple[str, dict[str, Any]]]:
    """A license key (entitlement ``pro``) and the server's licensing JWK Set."""
    with Client(live.issuer, api_key=live.token) as admin:
        admin.products.create("py-signed", "Py Signed")
        policy = admin.license_policies.create("py-signed", "signed", entitlements=["pro"])
        yield admin.licenses.create(policy["id"])["key"], admin.licenses.jwks()


@pytest.fixture
def make(live: Live) -> Iterator[Callable[..., tuple[Client, _EditValidate]]]:
    """``make(edit, keys, clock=...)``: a client over a transport passing validate answers through ``edit``."""
    made: list[Client] = []

    def client(edit: Edit = _same, keys: dict[str, Any] | None = None, **check: Any) -> tuple[Client, _EditValidate]:
        transport = _EditValidate(edit)
        made.append(
            Client(live.issuer, api_key=live.token, transport=transport, licensing=SignedAnswers(keys, **check))
        )
        return made[-1], transport

    yield client
    for c in made:
        c.close()


def _refused(call: Callable[[], object], code: str) -> None:
    with pytest.raises(LicenseError) as err:
        call()
    assert err.value.code == code, err.value


def test_genuine_tampered_and_unsigned_answers(make: Any, licensed: tuple[str, dict[str, Any]]) -> None:
    key, jwks = licensed
    genuine, _ = make(keys=jwks)
    answer = genuine.licenses.validate(key, entitlements=["pro"])
    assert answer["meta"]["valid"] is True and len(answer["meta"]["nonce"]) >= 16  # the generated nonce, echoed
    assert genuine.licenses.validate(key, nonce=7)["meta"]["nonce"] == 7
    # a missing entitlement is "not valid"; an attacker flipping it to valid breaks the signature
    flipped: list[bytes] = []

    def flip(body: bytes, headers: httpx2.Headers) -> bytes:
        flipped.append(body)
        return body.replace(b'"valid":false', b'"valid":true')

    tampered, _ = make(flip, jwks)
    _refused(lambda: tampered.licenses.validate(key, entitlements=["enterprise"]), "SIGNATURE_INVALID")
    assert b'"valid":false' in flipped[0]

    def strip(body: bytes, headers: httpx2.Headers) -> bytes:
        del headers["authz-signature"]
        return body

    unsigned, _ = make(strip, jwks)
    _refused(lambda: unsigned.licenses.validate(key), "SIGNATURE_MISSING")


def test_replayed_and_foreign_key_answers(make: Any, licensed: tuple[str, dict[str, Any]]) -> None:
    key, jwks = licensed
    captured: list[tuple[bytes, httpx2.Headers]] = []

    def replay(body: bytes, headers: httpx2.Headers) -> bytes:
        if not captured:
            captured.append((body, httpx2.Headers(headers)))
        headers.update(captured[0][1])
        return captured[0][0]

    replaying, _ = make(replay, jwks)
    assert replaying.licenses.validate(key)["meta"]["valid"] is True
    _refused(lambda: replaying.licenses.validate(key), "REPLAYED")  # a genuine answer to another request
    # only the key the header names, and only from the trusted set
    kid = jwks["keys"][0]["kid"]
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    stranger = {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
    foreign, _ = make(keys={"keys": [stranger]})
    _refused(lambda: foreign.licenses.validate(key), "SIGNATURE_INVALID")
    renamed, _ = make(keys={"keys": [{**k, "kid": k["kid"] + "-other"} for k in jwks["keys"]]})
    _refused(lambda: renamed.licenses.validate(key), "SIGNATURE_INVALID")


def test_keys_fetched_once_and_every_key_side_call_verified(make: Any, licensed: tuple[str, dict[str, Any]]) -> None:
    key, _ = licensed
    client, transport = make()  # nothing pinned: the server's JWK Set, fetched once
    machine = client.licenses.activate(key, "fp-py-signed")["data"]
    assert client.licenses.heartbeat(key, machine["id"])["data"]["id"] == machine["id"]
    assert client.licenses.me(key)["meta"]["nonce"]
    assert "BEGIN LICENSE FILE" in client.licenses.checkout(key=key)["data"]["certificate"]
    assert client.licenses.validate(key)["meta"]["valid"] is True
    assert client.licenses.deactivate(key, machine["id"])["data"]["deactivated"] is True
    assert [p for p in transport.paths if p.endswith("/licenses/jwks")] == ["/api/v1/licenses/jwks"]
    stale, _ = make(clock=lambda: 2**33)
    _refused(lambda: stale.licenses.validate(key), "RESPONSE_STALE")


@pytest.mark.anyio
async def test_async_client_verifies(live: Live, licensed: tuple[str, dict[str, Any]]) -> None:
    key, jwks = licensed
    async with AsyncClient(live.issuer, api_key=live.token) as client:
        assert (await client.licenses.validate(key, entitlements=["pro"]))["meta"]["valid"] is True
    bad = {"keys": [{**k, "kid": k["kid"] + "-other"} for k in jwks["keys"]]}
    async with AsyncClient(live.issuer, api_key=live.token, licensing=SignedAnswers(keys=bad)) as pinned:
        with pytest.raises(LicenseError) as err:
            await pinned.licenses.validate(key)
    assert err.value.code == "SIGNATURE_INVALID"
