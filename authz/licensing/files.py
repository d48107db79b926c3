"""Offline license and machine files, in Keygen's format (``abstract_checkout_service.rb``).

::

    -----BEGIN LICENSE FILE-----            (MACHINE FILE for a file bound to one fingerprint)
    base64( {"enc": ..., "sig": ..., "alg": ...} )   wrapped at 64 columns
    -----END LICENSE FILE-----

``alg`` is ``base64+ed25519`` (``enc`` = base64 of the payload JSON) or ``aes-256-gcm+ed25519``
(``enc`` = ``b64(ciphertext).b64(iv).b64(tag)``, AES-256-GCM with key SHA-256(license key), or
SHA-256(license key + fingerprint) for a machine file). ``sig`` = base64 Ed25519 over
``"license/" + enc`` (``"machine/" + enc``). The payload carries everything a client checks offline:
``meta`` {issued, expiry, iat, exp, ttl, kid, type} and ``data`` {license {id, status, product,
policy, expiry, entitlements, ...}, machine {id, fingerprint}}.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import textwrap
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authz.licensing.signing import SigningKey

ALGS = ("base64+ed25519", "aes-256-gcm+ed25519")
MIN_TTL = 3600
MAX_TTL = 365 * 86400


def iso(ts: float | None) -> str | None:
    return None if ts is None else _iso(int(ts))


@functools.lru_cache(maxsize=4096)  # the same few instants (now, expiries, heartbeats) on every answer
def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def payload(license_data: dict[str, Any], machine: dict[str, Any] | None, *, kid: str, now: int, ttl: int) -> bytes:
    meta = {
        "issued": iso(now),
        "expiry": iso(now + ttl),
        "iat": now,
        "exp": now + ttl,
        "ttl": ttl,
        "kid": kid,
        "type": "machine" if machine else "license",
    }
    data: dict[str, Any] = {"license": license_data}
    if machine:
        data["machine"] = machine
    return json.dumps({"meta": meta, "data": data}, separators=(",", ":"), sort_keys=True).encode()


def encrypt_key(license_key: str, fingerprint: str | None) -> bytes:
    return hashlib.sha256((license_key + (fingerprint or "")).encode()).digest()


def certificate(
    body: bytes, key: SigningKey, *, machine: bool, alg: str, license_key: str | None, fingerprint: str | None
) -> str:
    """The armored file for ``body`` (see the module docstring)."""
    if alg == "base64+ed25519":
        enc = base64.b64encode(body).decode()
    elif alg == "aes-256-gcm+ed25519":
        assert license_key is not None, "encryption needs the license key"
        iv = os.urandom(12)
        sealed = AESGCM(encrypt_key(license_key, fingerprint if machine else None)).encrypt(iv, body, None)
        ct, tag = sealed[:-16], sealed[-16:]
        enc = ".".join(base64.b64encode(part).decode() for part in (ct, iv, tag))
    else:
        raise ValueError(f"alg must be one of {', '.join(ALGS)}")
    prefix = "machine/" if machine else "license/"
    sig = key.sign((prefix + enc).encode())
    doc = json.dumps({"enc": enc, "sig": sig, "alg": alg}, separators=(",", ":")).encode()
    label = "MACHINE FILE" if machine else "LICENSE FILE"
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(doc).decode(), 64))
    return f"-----BEGIN {label}-----\n{wrapped}\n-----END {label}-----\n"
