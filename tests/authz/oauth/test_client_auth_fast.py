"""``private_key_jwt`` without joserfc on the common path: the same verdict as joserfc for every
assertion the shortcut takes (RFC 7515, RFC 7518 §3.3/§3.4, RFC 8037, RFC 9864), and the ``jti``
group commit of the token endpoint's fast path counting each assertion once (RFC 7523 §3)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from authz.oauth.client_auth import ALGORITHMS, _FastKeys
from tests.authz.conftest import RESOURCE, ASFactory

pytestmark = pytest.mark.anyio
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _sign(header: dict[str, Any], key: Any) -> str:
    claims = {"iss": "c", "sub": "c", "aud": "a", "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def _joserfc(assertion: str, keyset: KeySet) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return dict(jwt.decode(assertion, keyset, algorithms=ALGORITHMS).claims)
    except (JoseError, ValueError):
        return None


def _fast(assertion: str, keys: _FastKeys) -> dict[str, Any] | str | None:
    try:
        return keys.claims(assertion)
    except ValueError:
        return "refused"


def test_the_shortcut_agrees_with_joserfc() -> None:
    ec = ECKey.generate_key("P-256", auto_kid=True)
    ec384 = ECKey.generate_key("P-384", auto_kid=True)
    ed = OKPKey.generate_key("Ed25519", auto_kid=True)
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    ed_designed = OKPKey.import_key({**OKPKey.generate_key("Ed25519").as_dict(private=True), "kid": "ed-alg",
                                     "alg": "Ed25519"})  # fmt: skip
    rsa_enc = RSAKey.import_key({**RSAKey.generate_key(2048).as_dict(private=True), "kid": "rsa-enc", "use": "enc"})
    dup1 = ECKey.import_key({**ECKey.generate_key("P-256").as_dict(private=True), "kid": "dup"})
    dup2 = ECKey.import_key({**ECKey.generate_key("P-256").as_dict(private=True), "kid": "dup"})
    keys = [ec, ec384, ed, rsa, ed_designed, rsa_enc, dup1, dup2]
    keyset = KeySet.import_key_set({"keys": [k.as_dict(private=False) for k in keys]})
    fast = _FastKeys(keyset)
    stranger = ECKey.import_key({**ECKey.generate_key("P-256").as_dict(private=True), "kid": ec.kid})
    cases: list[tuple[str, bool]] = [  # (assertion, the shortcut takes it)
        (_sign({"alg": "ES256", "kid": ec.kid}, ec), True),
        (_sign({"alg": "ES256", "kid": ec.kid, "typ": "JWT"}, ec), True),
        (_sign({"alg": "EdDSA", "kid": ed.kid}, ed), True),
        (_sign({"alg": "Ed25519", "kid": ed.kid}, ed), True),
        (_sign({"alg": "RS256", "kid": rsa.kid}, rsa), True),
        (_sign({"alg": "Ed25519", "kid": "ed-alg"}, ed_designed), True),
        (_sign({"alg": "ES256", "kid": ec.kid}, stranger), True),  # a forged signature: both refuse
        (_sign({"alg": "ES384", "kid": ec384.kid}, ec384), False),
        (_sign({"alg": "PS256", "kid": rsa.kid}, rsa), False),
        (_sign({"alg": "ES256", "kid": "dup"}, dup1), False),
        (_sign({"alg": "ES256"}, ec), False),  # no kid
        (_sign({"alg": "ES256", "kid": ec.kid, "cty": "x"}, ec), False),
    ]
    header, payload, sig = cases[0][0].split(".")
    cases += [
        (f"{_b64({'alg': 'ES256', 'kid': ec.kid, 'typ': 1})}.{payload}.{sig}", False),  # typ not a string
        (f"{_b64({'alg': 'RS256', 'kid': ec.kid})}.{payload}.{sig}", False),  # alg not the key's
        (f"{header}.{_sign({'alg': 'ES256', 'kid': ec.kid}, ec).split('.')[1]}.{sig}", True),  # another payload
        (f"{header}.{payload}.{sig[:-4]}", True),  # a truncated signature
        (f"{header}.{_b64([1])}.{sig}", True),  # not an object (and not signed)
    ]
    for assertion, taken in cases:
        mine, theirs = _fast(assertion, fast), _joserfc(assertion, keyset)
        assert (mine is not None) == taken, assertion
        if mine is not None:
            assert mine == (theirs if theirs is not None else "refused"), assertion


async def _concurrent_assertions(as_factory: ASFactory, **settings: Any) -> None:
    """Eight requests at once: four distinct assertions, each sent twice. Each gets one token."""
    a = await as_factory(dev_mode=True, **settings)
    key = ECKey.generate_key("P-256", auto_kid=True)
    cid = "pkjwt-concurrent"
    a.client(client_id=cid, auth_method="private_key_jwt", grant_types=["client_credentials"],
             jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    now = int(time.time())
    signed = [
        jwt.encode({"alg": "ES256", "kid": key.kid},
                   {"iss": cid, "sub": cid, "aud": a.settings.issuer, "exp": now + 60, "jti": uuid.uuid4().hex}, key)
        for _ in range(4)
    ]  # fmt: skip

    def post(assertion: str) -> Any:
        data = {"grant_type": "client_credentials", "resource": RESOURCE, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion}  # fmt: skip
        return a.http.post("/token", data=data)

    answers: list[httpx2.Response] = await asyncio.gather(*(post(s) for s in signed + signed))
    for first, second in zip(answers[:4], answers[4:], strict=True):
        assert sorted([first.status_code, second.status_code]) == [200, 401]
    assert (await post(signed[0])).status_code == 401  # and later, too


@pytest.mark.requirement("rfc7523:jti-replay")
async def test_concurrent_assertion_replays_count_once_sqlite(as_factory: ASFactory) -> None:
    await _concurrent_assertions(as_factory)


@pytest.mark.requirement("rfc7523:jti-replay")
async def test_concurrent_assertion_replays_count_once_postgres(postgres_url: str, as_factory: ASFactory) -> None:
    await _concurrent_assertions(as_factory, database_url=postgres_url)


@pytest.mark.requirement("rfc7523:jti-replay")
async def test_concurrent_assertion_replays_count_once_redis(redis_url: str, as_factory: ASFactory) -> None:
    await _concurrent_assertions(as_factory, redis_url=redis_url)
