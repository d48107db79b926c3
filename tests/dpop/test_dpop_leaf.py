"""The shared DPoP pieces: thumbprints against joserfc's RFC 7638 implementation, key files, nonces."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from dpop import ALGORITHMS, DpopKey, NonceIssuer, ProofError, ProofVerifier, normalize_htu, thumbprint


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_thumbprint_matches_joserfc(alg: str) -> None:
    key = DpopKey.generate(alg)
    imported = {"EC": ECKey, "OKP": OKPKey, "RSA": RSAKey}[key.public_jwk["kty"]].import_key(key.public_jwk)
    assert key.jkt == thumbprint(key.public_jwk) == imported.thumbprint()


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_key_file_round_trips_with_mode_0600(tmp_path: Path, alg: str) -> None:
    path = tmp_path / "agent" / "dpop.json"
    first = DpopKey.load_or_create(path, alg)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = DpopKey.load_or_create(path, alg)
    assert again.jkt == first.jkt and again.alg == alg
    assert "d" in json.loads(path.read_text())
    verifier = ProofVerifier(ALGORITHMS)
    assert verifier.verify(again.proof("GET", "https://rs/x"), method="GET", uris={"https://rs/x"}).jkt == first.jkt


def test_htu_normalisation() -> None:
    assert normalize_htu("HTTPS://Example.COM:443/a?b#c") == "https://example.com/a"
    assert normalize_htu("http://example.com:8080") == "http://example.com:8080/"
    assert normalize_htu("ftp://example.com/") is None
    assert normalize_htu("http://[::1]:9/x") == "http://[::1]:9/x"


def test_a_verifier_refuses_algorithms_outside_the_asymmetric_list() -> None:
    with pytest.raises(ValueError):
        ProofVerifier(["HS256"])
    with pytest.raises(ValueError):
        ProofVerifier([])


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = DpopKey(rsa.generate_private_key(public_exponent=65537, key_size=1024), "PS256")
    with pytest.raises(ProofError, match="2048"):
        ProofVerifier(ALGORITHMS).verify(small.proof("GET", "https://rs/x"), method="GET", uris={"https://rs/x"})


def test_nonces_expire_rotate_and_resist_tampering() -> None:
    now = [1_000_000.0]
    issuer = NonceIssuer(b"k" * 32, ttl=60, clock=lambda: now[0])
    first = issuer.issue()
    assert issuer.valid(first) and issuer.issue() == first
    now[0] += 31  # past half the lifetime: a new nonce is handed out, the old one still works
    second = issuer.issue()
    assert second != first and issuer.valid(first) and issuer.valid(second)
    now[0] += 30
    assert not issuer.valid(first) and issuer.valid(second)
    assert not issuer.valid(None) and not issuer.valid("x" * 48) and not issuer.valid(second[:-2] + "AA")
    assert not NonceIssuer(b"o" * 32, ttl=60, clock=lambda: now[0]).valid(second)  # another key
