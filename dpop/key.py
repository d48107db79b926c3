"""A client's DPoP proof key: generated or loaded from a file, and the proofs it signs (RFC 9449 §4.2).

RFC 9449 §4.2: the header carries ``typ`` "dpop+jwt", an asymmetric ``alg`` and the public key as
``jwk``; the payload ``jti`` ("a unique identifier for the DPoP proof JWT"), ``htm`` ("the HTTP
method of the request to which the JWT is attached"), ``htu`` ("the HTTP target URI [...] without
query and fragment parts"), ``iat``; "when the DPoP proof is used in conjunction with the
presentation of an access token in protected resource access", ``ath``; and ``nonce`` when the
server supplied one. A fresh proof (new ``jti``) is signed for every request.

Keys: ES256 (P-256, the default), EdDSA (Ed25519), RS256/PS256 (RSA 2048). A key file holds the
private JWK as JSON, created with mode 0600 when missing, so an agent keeps its key across restarts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dpop.proof import access_token_hash, b64url, thumbprint

__all__ = ["DpopKey"]

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def _strip_url(url: str) -> str:
    """``htu``: the target URI without query and fragment."""
    return url.split("#", 1)[0].split("?", 1)[0]


class DpopKey:
    """One proof key. ``proof(method, url, access_token=..., nonce=...)`` signs a fresh proof."""

    def __init__(self, private_key: PrivateKey, alg: str = "ES256") -> None:
        self._key = private_key
        self.alg = alg
        self.public_jwk = self._public_jwk()
        self.jkt = thumbprint(self.public_jwk)
        header = {"typ": "dpop+jwt", "alg": alg, "jwk": self.public_jwk}
        self._prefix = b64url(json.dumps(header, separators=(",", ":")).encode()) + "."

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def generate(cls, alg: str = "ES256") -> DpopKey:
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()), alg)
        if alg == "ES384":
            return cls(ec.generate_private_key(ec.SECP384R1()), alg)
        if alg == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate(), alg)
        if alg in ("RS256", "PS256"):
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), alg)
        raise ValueError(f"unsupported DPoP algorithm {alg!r}")

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any], alg: str | None = None) -> DpopKey:
        kty = jwk.get("kty")
        if kty == "EC":
            curve: ec.EllipticCurve = ec.SECP256R1() if jwk.get("crv") == "P-256" else ec.SECP384R1()
            public = ec.EllipticCurvePublicNumbers(
                int.from_bytes(_b64d(jwk["x"]), "big"), int.from_bytes(_b64d(jwk["y"]), "big"), curve
            )
            key: PrivateKey = ec.EllipticCurvePrivateNumbers(
                int.from_bytes(_b64d(jwk["d"]), "big"), public
            ).private_key()
            return cls(key, alg or ("ES256" if jwk.get("crv") == "P-256" else "ES384"))
        if kty == "OKP":
            return cls(ed25519.Ed25519PrivateKey.from_private_bytes(_b64d(jwk["d"])), "EdDSA")
        if kty == "RSA":
            ints = {k: int.from_bytes(_b64d(jwk[k]), "big") for k in ("n", "e", "d", "p", "q", "dp", "dq", "qi")}
            numbers = rsa.RSAPrivateNumbers(
                ints["p"], ints["q"], ints["d"], ints["dp"], ints["dq"], ints["qi"],
                rsa.RSAPublicNumbers(ints["e"], ints["n"]),
            )  # fmt: skip
            return cls(numbers.private_key(), alg or str(jwk.get("alg") or "PS256"))
        raise ValueError("unsupported JWK key type for DPoP")

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str], alg: str = "ES256") -> DpopKey:
        """The key in ``path`` (a private JWK as JSON), or a new one written there with mode 0600."""
        file = Path(path)
        if file.exists():
            data = json.loads(file.read_text())
            return cls.from_jwk(data, data.get("alg"))
        key = cls.generate(alg)
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({**key.private_jwk(), "alg": alg}, out)
        return key

    # -- JWKs ----------------------------------------------------------------------------------
    def _public_jwk(self) -> dict[str, str]:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            numbers = key.public_key().public_numbers()
            size = (key.curve.key_size + 7) // 8
            crv = "P-256" if key.curve.key_size == 256 else "P-384"
            return {"kty": "EC", "crv": crv, "x": _int_b64(numbers.x, size), "y": _int_b64(numbers.y, size)}
        if isinstance(key, ed25519.Ed25519PrivateKey):
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        pub = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _int_b64(pub.n), "e": _int_b64(pub.e)}

    def private_jwk(self) -> dict[str, str]:
        key = self._key
        jwk = dict(self.public_jwk)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk["d"] = _int_b64(key.private_numbers().private_value, (key.curve.key_size + 7) // 8)
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

            jwk["d"] = b64url(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
        else:
            n = key.private_numbers()
            jwk.update(
                d=_int_b64(n.d), p=_int_b64(n.p), q=_int_b64(n.q),
                dp=_int_b64(n.dmp1), dq=_int_b64(n.dmq1), qi=_int_b64(n.iqmp),
            )  # fmt: skip
        return jwk

    # -- proofs --------------------------------------------------------------------------------
    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(18),
            "htm": method.upper(),
            "htu": _strip_url(url),
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        if extra:
            claims.update(extra)
        signing_input = self._prefix + b64url(json.dumps(claims, separators=(",", ":")).encode())
        return signing_input + "." + b64url(self._sign(signing_input.encode("ascii")))

    def _sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            size = (key.curve.key_size + 7) // 8
            algorithm = hashes.SHA256() if size == 32 else hashes.SHA384()
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if self.alg == "RS256":
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(data, pss, hashes.SHA256())
