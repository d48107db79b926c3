"""Offline verification of authz license files and signed licensing answers: no network, fail closed.

``verify_license_file`` checks a ``-----BEGIN LICENSE FILE-----`` (or ``MACHINE FILE``) in Keygen's
format — Ed25519 signature over ``"license/" + enc`` (``"machine/" + enc``) by a key of the server's
JWK Set, decryption (``aes-256-gcm+ed25519``, key SHA-256(license key [+ fingerprint])), the file's
and the license's expiry, the license status, the machine fingerprint and required entitlements —
and defends against a rolled-back clock with a stored high-water mark: the latest time this client
has seen (its own clock or a signed ``iat``/``ts``). A clock more than ``skew`` seconds behind the
mark, or behind a signed issue time, is refused (``CLOCK_ROLLBACK``) instead of extending a file.

``verify_response`` checks a signed HTTP answer: the ``Authz-Signature`` over ``"response/" + body``,
the nonce this client sent (a captured answer to another request is ``REPLAYED``), and freshness.
Every failure raises :class:`LicenseError` with a stable ``code``; nothing here returns "valid" by default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_FILE = 256 * 1024
DEFAULT_SKEW = 300
ARMOR = re.compile(r"^-----BEGIN (LICENSE|MACHINE) FILE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1 FILE-----\s*$")
_SIG = re.compile(r'(\w+)="([^"]*)"')


class LicenseError(Exception):
    """Verification failed; ``code`` is stable (``SIGNATURE_INVALID``, ``FILE_EXPIRED``, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class HighWaterMark(Protocol):
    def get(self) -> float: ...

    def set(self, value: float) -> None: ...


class MemoryMark:
    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def get(self) -> float:
        return self.value

    def set(self, value: float) -> None:
        self.value = value


class FileMark:
    """The mark in a small JSON file (mode 0600, replaced atomically). A missing file is mark 0; an
    unreadable one is refused (deleting the file to reset the mark is the attacker's move, so keep it
    where the licensed program keeps its own state)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def get(self) -> float:
        try:
            value = json.loads(self.path.read_text())["mark"]
        except FileNotFoundError:
            return 0.0
        except (ValueError, KeyError, TypeError) as exc:
            raise LicenseError("CLOCK_STATE_INVALID", f"cannot read the clock mark {self.path}") from exc
        if not isinstance(value, (int, float)):
            raise LicenseError("CLOCK_STATE_INVALID", f"cannot read the clock mark {self.path}")
        return float(value)

    def set(self, value: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".mark-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"mark": value}, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def public_keys(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWK Set (``GET /api/v1/licenses/jwks``), by kid."""
    out = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and isinstance(jwk.get("x"), str):
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            out[str(jwk.get("kid", ""))] = Ed25519PublicKey.from_public_bytes(raw)
    if not out:
        raise LicenseError("NO_KEYS", "the JWK Set has no Ed25519 key")
    return out


def _check_clock(mark: HighWaterMark | None, now: float, signed_time: float, skew: float) -> None:
    seen = mark.get() if mark is not None else 0.0
    if now < seen - skew:
        raise LicenseError("CLOCK_ROLLBACK", "the clock is behind a time this client has already seen")
    if now < signed_time - skew:
        raise LicenseError("CLOCK_ROLLBACK", "the clock is behind the server's signed time")
    if mark is not None:
        mark.set(max(seen, now, signed_time))


def _verify(keys: Mapping[str, Ed25519PublicKey], message: bytes, sig_b64: str, kid: str | None) -> str:
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LicenseError("SIGNATURE_INVALID", "the signature is not base64") from exc
    candidates: Iterable[tuple[str, Ed25519PublicKey]] = keys.items()
    if kid is not None:
        candidates = [(kid, keys[kid])] if kid in keys else []
    for k, public in candidates:
        try:
            public.verify(sig, message)
            return k
        except InvalidSignature:
            continue
    raise LicenseError("SIGNATURE_INVALID", "no trusted key made this signature")


def canonical_key(key: str) -> str:
    """The grouped ``LK-XXXXXX-...`` form the server encrypts with (case, spaces and dashes as typed)."""
    compact = "".join(key.split()).replace("-", "").upper()
    if not compact.startswith("LK") or len(compact) != 38:
        raise LicenseError("KEY_MALFORMED", "not a license key")
    chars = compact[2:]
    return "-".join(["LK", *(chars[i : i + 6] for i in range(0, len(chars), 6))])


@dataclass(frozen=True)
class LicenseFile:
    kind: str  # license | machine
    kid: str
    issued_at: int
    expires_at: int
    license: dict[str, Any]
    machine: dict[str, Any] | None

    @property
    def entitlements(self) -> list[str]:
        return list(self.license.get("entitlements", []))


def verify_license_file(
    text: str, jwks: Mapping[str, Any], *, key: str | None = None, fingerprint: str | None = None,
    entitlements: Iterable[str] = (), mark: HighWaterMark | None = None, skew: float = DEFAULT_SKEW,
    clock: Callable[[], float] = time.time,
) -> LicenseFile:  # fmt: skip
    """Verify a license or machine file completely offline; :class:`LicenseError` on any doubt."""
    if len(text) > MAX_FILE:
        raise LicenseError("FILE_MALFORMED", "the file is too large")
    m = ARMOR.match(text.strip())
    if m is None:
        raise LicenseError("FILE_MALFORMED", "not a -----BEGIN LICENSE FILE----- or MACHINE FILE")
    kind = m.group(1).lower()
    try:
        doc = json.loads(base64.b64decode("".join(m.group(2).split()), validate=True))
        enc, sig, alg = doc["enc"], doc["sig"], doc["alg"]
        assert isinstance(enc, str) and isinstance(sig, str) and isinstance(alg, str)
    except (ValueError, KeyError, TypeError, AssertionError, binascii.Error) as exc:
        raise LicenseError("FILE_MALFORMED", "the file's body is not {enc, sig, alg}") from exc
    kid = _verify(public_keys(jwks), f"{kind}/{enc}".encode(), sig, None)
    payload = _decode(enc, alg, kind, key, fingerprint)
    meta, data = payload.get("meta", {}), payload.get("data", {})
    if meta.get("type") != kind or meta.get("kid") != kid:
        raise LicenseError("FILE_MALFORMED", "the payload's type or key id does not match the file")
    iat, exp = meta.get("iat"), meta.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise LicenseError("FILE_MALFORMED", "the payload has no iat/exp")
    now = clock()
    _check_clock(mark, now, iat, skew)
    if now >= exp:
        raise LicenseError("FILE_EXPIRED", "the license file has expired; check out a new one")
    lic = data.get("license") or {}
    if lic.get("status") != "active":
        raise LicenseError("LICENSE_NOT_ACTIVE", f"the license was {lic.get('status')} when the file was issued")
    lic_exp = lic.get("expires_at")
    if isinstance(lic_exp, int) and now >= lic_exp and lic.get("expiration_strategy") != "maintain":
        raise LicenseError("LICENSE_EXPIRED", "the license has expired")
    machine = data.get("machine")
    if kind == "machine":
        if fingerprint is None or not isinstance(machine, dict) or machine.get("fingerprint") != fingerprint:
            raise LicenseError("FINGERPRINT_MISMATCH", "the machine file is for another machine")
    missing = sorted(set(entitlements) - set(lic.get("entitlements", [])))
    if missing:
        raise LicenseError("ENTITLEMENTS_MISSING", "the license lacks: " + ", ".join(missing))
    return LicenseFile(kind, kid, iat, exp, lic, machine if isinstance(machine, dict) else None)


def _decode(enc: str, alg: str, kind: str, key: str | None, fingerprint: str | None) -> dict[str, Any]:
    try:
        if alg == "base64+ed25519":
            raw = base64.b64decode(enc, validate=True)
        elif alg == "aes-256-gcm+ed25519":
            if key is None or (kind == "machine" and fingerprint is None):
                raise LicenseError("KEY_REQUIRED", "an encrypted file needs the license key (and the fingerprint)")
            bound = fingerprint if kind == "machine" and fingerprint is not None else ""
            secret = hashlib.sha256((canonical_key(key) + bound).encode())
            ct, iv, tag = (base64.b64decode(part, validate=True) for part in enc.split("."))
            raw = AESGCM(secret.digest()).decrypt(iv, ct + tag, None)
        else:
            raise LicenseError("ALG_UNSUPPORTED", f"unsupported alg {alg!r}")
        payload = json.loads(raw)
    except InvalidTag as exc:
        raise LicenseError("DECRYPTION_FAILED", "wrong license key or fingerprint for this file") from exc
    except (ValueError, binascii.Error) as exc:
        raise LicenseError("FILE_MALFORMED", "the payload cannot be decoded") from exc
    if not isinstance(payload, dict):
        raise LicenseError("FILE_MALFORMED", "the payload is not an object")
    return payload


def verify_response(
    body: bytes, signature: str | None, jwks: Mapping[str, Any], *, nonce: str | int | None,
    max_age: float = DEFAULT_SKEW, mark: HighWaterMark | None = None, clock: Callable[[], float] = time.time,
) -> dict[str, Any]:  # fmt: skip
    """A signed answer's JSON, after checking its signature, our nonce and its age."""
    params = dict(_SIG.findall(signature or ""))
    if params.get("algorithm") != "ed25519" or "signature" not in params:
        raise LicenseError("SIGNATURE_MISSING", "the answer carries no Ed25519 Authz-Signature")
    _verify(public_keys(jwks), b"response/" + body, params["signature"], params.get("keyid"))
    try:
        doc = json.loads(body)
        meta = doc["meta"]
        ts = float(meta["ts"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LicenseError("RESPONSE_MALFORMED", "the signed answer has no meta.ts") from exc
    if nonce is not None and meta.get("nonce") != nonce:
        raise LicenseError("REPLAYED", "the signed answer is for another request (nonce mismatch)")
    now = clock()
    _check_clock(mark, now, ts, max_age)
    if now - ts > max_age:
        raise LicenseError("RESPONSE_STALE", "the signed answer is too old")
    return dict(doc)


@dataclass
class SignedAnswers:
    """How a client checks the signed answers of the key-side licensing calls: the server's licensing
    JWK Set ``keys`` (pinned in the program; ``None``: the caller fetches ``/licenses/jwks`` once), the
    oldest answer accepted (``max_age`` seconds) and an optional clock ``mark``. Shared by
    :class:`agent_client.license_client.LicenseClient` and the admin SDK's ``Client``/``AsyncClient``."""

    keys: Mapping[str, Any] | None = None
    max_age: float = DEFAULT_SKEW
    mark: HighWaterMark | None = None
    clock: Callable[[], float] = time.time

    def verify(
        self, body: bytes, signature: str | None, nonce: str | int | None, *, keys: Mapping[str, Any] | None = None,
        max_age: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """:func:`verify_response` with these settings (``keys`` when none are pinned); :class:`LicenseError`."""
        jwks = self.keys if self.keys is not None else keys
        if jwks is None:
            raise LicenseError("NO_KEYS", "no licensing keys to check the answer with")
        return verify_response(body, signature, jwks, nonce=nonce, max_age=max_age or self.max_age, mark=self.mark,
                               clock=self.clock)  # fmt: skip
