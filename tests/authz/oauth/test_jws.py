"""Our compact JWS against joserfc, the reference: each verifies what the other signs, and nothing else."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from authz.oauth.jws import Signer, Verifier, b64d, b64e

KEYS = [
    ("ES256", lambda: ECKey.generate_key("P-256", auto_kid=True)),
    ("RS256", lambda: RSAKey.generate_key(2048, auto_kid=True)),
]
CLAIMS = {"iss": "https://as", "sub": "ü-subject", "aud": "https://rs/mcp", "exp": 2_000_000_000, "act": {"sub": "a"}}


@pytest.mark.parametrize(("alg", "make"), KEYS, ids=[k[0] for k in KEYS])
def test_joserfc_verifies_what_we_sign_and_we_verify_what_joserfc_signs(alg: str, make: object) -> None:
    key = make()  # type: ignore[operator]
    ours = Signer(key, alg, key.kid).sign(CLAIMS)
    decoded = jwt.decode(ours, KeySet([key]), algorithms=[alg])
    assert decoded.claims == CLAIMS and decoded.header == {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    theirs = jwt.encode({"alg": alg, "typ": "at+jwt", "kid": key.kid}, CLAIMS, key)
    result = Verifier([(key.kid, alg, key)]).verify(theirs)
    assert result is not None and result[1] == CLAIMS


@pytest.mark.parametrize("alg", ["EdDSA", "ES384"])
def test_round_trip_of_algorithms_joserfc_does_not_recommend(alg: str) -> None:
    key = (
        OKPKey.generate_key("Ed25519", auto_kid=True) if alg == "EdDSA" else ECKey.generate_key("P-384", auto_kid=True)
    )
    token = Signer(key, alg, key.kid).sign(CLAIMS)
    result = Verifier([(key.kid, alg, key)]).verify(token)
    assert result is not None and result[1] == CLAIMS
    assert Verifier([(key.kid, "ES256", key)]).verify(token) is None


def test_tampering_unknown_kids_and_algorithm_swaps_are_rejected() -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    other = ECKey.generate_key("P-256", auto_kid=True)
    verifier = Verifier([(key.kid, "ES256", key)])
    token = Signer(key, "ES256", key.kid).sign(CLAIMS)
    head, payload, sig = token.split(".")
    forged_payload = b64e(b'{"iss":"https://as","sub":"admin"}').decode()
    assert verifier.verify(f"{head}.{forged_payload}.{sig}") is None
    assert verifier.verify(Signer(other, "ES256", key.kid).sign(CLAIMS)) is None  # right kid, wrong key
    assert verifier.verify(Signer(other, "ES256", other.kid).sign(CLAIMS)) is None  # unknown kid
    none_head = b64e(b'{"alg":"none","typ":"at+jwt","kid":"%s"}' % key.kid.encode()).decode()
    assert verifier.verify(f"{none_head}.{payload}.") is None
    hs_head = b64e(b'{"alg":"HS256","typ":"at+jwt","kid":"%s"}' % key.kid.encode()).decode()
    assert verifier.verify(f"{hs_head}.{payload}.{sig}") is None
    for garbage in ("", "a.b", "a.b.c.d", "!!.!!.!!", f"{head}.{payload}.{sig[:-4]}"):
        assert verifier.verify(garbage) is None
    assert b64d(b64e(b"\x00\xff")) == b"\x00\xff"
