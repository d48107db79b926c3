"""Checking one DPoP proof against an HTTP request (RFC 9449 §4.3), and the RFC 7638 key thumbprint.

RFC 9449 §4.3 (Checking DPoP Proofs): "To validate a DPoP proof, the receiving server MUST ensure
the following:

 1. There is not more than one DPoP HTTP request header field.
 2. The DPoP HTTP request header field value is a single and well-formed JWT.
 3. All required claims per Section 4.2 are contained in the JWT.
 4. The typ JOSE Header Parameter has the value dpop+jwt.
 5. The alg JOSE Header Parameter indicates a registered asymmetric digital signature algorithm
    [IANA.JOSE.ALGS], is not none, is supported by the application, and is acceptable per local
    policy.
 6. The JWT signature verifies with the public key contained in the jwk JOSE Header Parameter.
 7. The jwk JOSE Header Parameter does not contain a private key.
 8. The htm claim matches the HTTP method of the current request.
 9. The htu claim matches the HTTP URI value for the HTTP request in which the JWT was received,
    ignoring any query and fragment parts.
10. If the server provided a nonce value to the client, the nonce claim matches the
    server-provided nonce value.
11. The creation time of the JWT, as determined by either the iat claim or a server managed
    timestamp via the nonce claim, is within an acceptable window (see Section 11.1).
12. If presented to a protected resource in conjunction with an access token, ensure that the
    value of the ath claim equals the hash of that access token, and confirm that the public key
    to which the access token is bound matches the public key from the DPoP proof."

This module makes checks 1-9, 11 and the ``ath`` half of 12; the caller owns what needs state:
the nonce (10, :mod:`dpop.nonce`), the ``jti`` replay cache (§11.1: "the server MUST only accept
the proof once within the window") and the ``cnf.jkt`` comparison (the token's claims).
SEP-1932 pins the window to ±300 s (``iat`` "within 5 minutes"). Signatures are checked with
``cryptography`` directly: the token endpoint and every request to a protected resource run this.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import json.decoder
import json.scanner
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "IAT_WINDOW",
    "Proof",
    "ProofError",
    "ProofVerifier",
    "access_token_hash",
    "b64url",
    "normalize_htu",
    "single_proof",
    "thumbprint",
]

ALGORITHMS = ("ES256", "ES384", "EdDSA", "RS256", "PS256")  # asymmetric only: never none, never HS*
DEFAULT_ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")
IAT_WINDOW = 300  # seconds either side of now (SEP-1932; node-oidc-provider uses the same 300)
MAX_PROOF_BYTES = 8 * 1024
MAX_JTI = 256
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_EC = {"ES256": ("P-256", ec.SECP256R1, hashes.SHA256, 32), "ES384": ("P-384", ec.SECP384R1, hashes.SHA384, 48)}
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}


class ProofError(Exception):
    """The proof fails a check; ``description`` is public text (never contains the proof)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that passed every stateless check: what the caller still needs (jkt, jti, iat, nonce)."""

    jkt: str  # RFC 7638 SHA-256 thumbprint of the proof key (base64url)
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None = None
    ath: str | None = None

    def replay_key(self) -> str:
        """The replay-cache key: the jti is unique per key (RFC 9449 §11.1)."""
        return f"dpop|{self.jkt}|{self.jti}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64d(text: str) -> bytes:
    """base64url without padding (RFC 7515 §2): ``base64.urlsafe_b64decode`` in one C call (the same
    lax decoding); non-ASCII text raises UnicodeEncodeError, a ValueError."""
    return binascii.a2b_base64(text.encode("ascii").translate(_URLSAFE) + b"=" * (-len(text) % 4))


_scan_json: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(  # json.loads' own (C) scanner
    json.decoder.JSONDecoder()  # type: ignore[arg-type]  # typeshed types the factory's argument as itself
)


def _json(raw: bytes) -> Any:
    """``json.loads`` of UTF-8 bytes (RFC 7515 §5.2: the JWS parts are UTF-8), without its encoding
    detection and whitespace passes: the C scanner, then the full parser when anything is left over."""
    text = raw.decode("utf-8")
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # leading whitespace or nothing: the full parser decides
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.

    RFC 9449 §6.1: ``cnf.jkt`` is "the base64url encoding [RFC7515] of the JWK SHA-256 Thumbprint
    (according to [RFC7638]) of the DPoP public key (in JWK format) to which the access token is bound".
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ProofError("The proof key is not a supported public JWK")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 ``ath``: "the base64url encoding of the SHA-256 hash of the ASCII encoding of
    the associated access token's value"."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def normalize_htu(uri: str) -> str | None:
    """Scheme and host lowercased, default port dropped, empty path as ``/``, no query or fragment
    (RFC 9449 §4.3 check 9 and RFC 3986 §6.2.2/§6.2.3 normalisation); None if not an http(s) URI."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def single_proof(values: Sequence[str]) -> str | None:
    """Check 1: at most one ``DPoP`` header field (a comma would join several into one)."""
    if not values:
        return None
    if len(values) > 1 or "," in values[0]:
        raise ProofError("More than one DPoP proof")
    return values[0].strip()


def _public_key(alg: str, jwk: Mapping[str, Any]) -> Any:
    kty = jwk.get("kty")
    if alg in _EC:
        crv, curve, _, size = _EC[alg]
        if kty != "EC" or jwk.get("crv") != crv:
            raise ProofError(f"The proof key does not fit {alg}")
        x, y = _b64d(str(jwk.get("x", ""))), _b64d(str(jwk.get("y", "")))
        if len(x) != size or len(y) != size:
            raise ProofError("The proof key is malformed")
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve())
        return numbers.public_key()
    if alg == "EdDSA":
        if kty != "OKP" or jwk.get("crv") != "Ed25519":
            raise ProofError("The proof key does not fit EdDSA (Ed25519)")
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64d(str(jwk.get("x", ""))))
    if kty != "RSA":
        raise ProofError(f"The proof key does not fit {alg}")
    n = int.from_bytes(_b64d(str(jwk.get("n", ""))), "big")
    if n.bit_length() < 2048:
        raise ProofError("The proof key is too small (RSA keys need 2048 bits)")
    return rsa.RSAPublicNumbers(int.from_bytes(_b64d(str(jwk.get("e", ""))), "big"), n).public_key()


_ECDSA = {alg: (ec.ECDSA(hash_cls()), size) for alg, (_, _, hash_cls, size) in _EC.items()}  # immutable, shared


def _verify(alg: str, key: Any, data: bytes, sig: bytes) -> bool:
    try:
        ecdsa = _ECDSA.get(alg)
        if ecdsa is not None:
            algorithm, size = ecdsa
            if len(sig) != 2 * size:
                return False
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), data, algorithm)
        elif alg == "EdDSA":
            key.verify(sig, data)
        elif alg == "RS256":
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:  # PS256
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
            key.verify(sig, data, pss, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class ProofVerifier:
    """Stateless checks of RFC 9449 §4.3 with an algorithm allow-list and a bounded key cache.

    The parsed public key and its thumbprint are cached by the encoded header: one client reuses
    one key for all its proofs, and building an EC key from its coordinates validates the point.
    """

    def __init__(
        self,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        *,
        window: int = IAT_WINDOW,
        clock: Callable[[], float] = time.time,
        key_cache_size: int = 4096,
    ) -> None:
        unknown = [a for a in algorithms if a not in ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(f"DPoP algorithms must be a non-empty subset of {ALGORITHMS}, not {unknown}")
        self.algorithms = tuple(algorithms)
        self.window = window
        self._clock = clock
        self._keys: dict[str, tuple[str, Any, str]] = {}  # encoded header -> (alg, public key, jkt)
        self._max_keys = key_cache_size

    def _header(self, encoded: str) -> tuple[str, Any, str]:
        cached = self._keys.get(encoded)
        if cached is not None:
            return cached
        try:
            header = _json(_b64d(encoded))
        except (ValueError, RecursionError) as exc:  # 6,000 '[' fit in a proof: RecursionError is no ValueError
            raise ProofError("The DPoP proof is not a well-formed JWT") from exc
        if not isinstance(header, dict):
            raise ProofError("The DPoP proof is not a well-formed JWT")
        if header.get("typ") != "dpop+jwt":  # check 4
            raise ProofError("The DPoP proof's typ must be dpop+jwt")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:  # check 5
            raise ProofError("The DPoP proof's alg is not accepted")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofError("The DPoP proof has no jwk header")
        if any(m in jwk for m in PRIVATE_MEMBERS):  # check 7
            raise ProofError("The DPoP proof's jwk must not contain a private key")
        try:
            key = _public_key(alg, jwk)
        except (ValueError, TypeError) as exc:
            raise ProofError("The DPoP proof's jwk is not a valid public key") from exc
        entry = (alg, key, thumbprint(jwk))
        if len(self._keys) >= self._max_keys:
            self._keys.clear()
        self._keys[encoded] = entry
        return entry

    def verify(
        self,
        proof: str,
        *,
        method: str,
        uris: Collection[str],
        access_token: str | None = None,
        now: float | None = None,
    ) -> Proof:
        """Checks 2-9, 11 and ``ath``; ``uris`` are the acceptable normalised ``htu`` values."""
        if len(proof) > MAX_PROOF_BYTES:
            raise ProofError("The DPoP proof is too large")
        if proof.count(".") != 2:  # check 2
            raise ProofError("The DPoP proof is not a well-formed JWT")
        signing_input, _, encoded_signature = proof.rpartition(".")
        encoded_header, _, encoded_claims = signing_input.partition(".")
        alg, key, jkt = self._header(encoded_header)
        try:
            signature = _b64d(encoded_signature)
            signed = _verify(alg, key, signing_input.encode("ascii"), signature)
            claims = _json(_b64d(encoded_claims)) if signed else None
        except (ValueError, UnicodeError, RecursionError) as exc:  # the signer is the prover: nesting is hostile
            raise ProofError("The DPoP proof is not a well-formed JWT") from exc
        if not signed:  # check 6
            raise ProofError("The DPoP proof's signature does not verify")
        if not isinstance(claims, dict):
            raise ProofError("The DPoP proof is not a well-formed JWT")
        jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:  # check 3
            raise ProofError("The DPoP proof needs a jti")
        if not isinstance(htm, str) or not isinstance(htu, str):
            raise ProofError("The DPoP proof needs htm and htu")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise ProofError("The DPoP proof needs a numeric iat")
        if "?" in htu or "#" in htu:  # §4.2: htu is the URI "without query and fragment parts"
            raise ProofError("The DPoP proof's htu must not have a query or fragment")
        if htm != method:  # check 8
            raise ProofError("The DPoP proof's htm does not match the request method")
        if htu not in uris and normalize_htu(htu) not in uris:  # check 9 (most clients send the normal form)
            raise ProofError("The DPoP proof's htu does not match the request URI")
        current = self._clock() if now is None else now
        if abs(current - iat) > self.window:  # check 11
            raise ProofError("The DPoP proof's iat is outside the acceptable window")
        nonce = claims.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise ProofError("The DPoP proof's nonce must be a string")
        ath = claims.get("ath")
        if access_token is not None and ath != access_token_hash(access_token):  # check 12 (ath)
            raise ProofError("The DPoP proof's ath does not match the access token")
        return Proof(jkt, jti, int(iat), htm, htu, nonce, ath if isinstance(ath, str) else None)
