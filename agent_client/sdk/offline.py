"""``verify_offline``: check a checked-out license (or machine) file with no network at all.

A thin front of :func:`agent_client.licenses.verify_license_file` (Ed25519 signature by a key of the
server's JWK Set, decryption with the license key, expiry, status, fingerprint, entitlements, and a
rolled-back clock refused): it takes the file as text or a path, and the public key as the JWK Set
of ``GET /api/v1/licenses/jwks`` (``client.licenses.jwks()``), one JWK of it, or that JSON as text.
Every failure raises :class:`agent_client.licenses.LicenseError` with a stable ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agent_client.licenses import DEFAULT_SKEW, HighWaterMark, LicenseError, LicenseFile, verify_license_file


def _jwks(public_key: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(public_key, str):
        try:
            public_key = json.loads(public_key)
        except ValueError as exc:
            raise LicenseError("NO_KEYS", "the public key is not a JWK or a JWK Set") from exc
    if not isinstance(public_key, Mapping):
        raise LicenseError("NO_KEYS", "the public key is not a JWK or a JWK Set")
    return public_key if "keys" in public_key else {"keys": [dict(public_key)]}


def verify_offline(
    file: str | Path,
    public_key: Mapping[str, Any] | str,
    *,
    key: str | None = None,
    fingerprint: str | None = None,
    entitlements: Iterable[str] = (),
    mark: HighWaterMark | None = None,
    skew: float = DEFAULT_SKEW,
) -> LicenseFile:
    """The verified license of ``file`` (``key`` decrypts an encrypted file; ``fingerprint`` for a machine file)."""
    text = file.read_text() if isinstance(file, Path) else file
    return verify_license_file(
        text, _jwks(public_key), key=key, fingerprint=fingerprint, entitlements=entitlements, mark=mark, skew=skew
    )
