"""Input rules for agents, teams and credentials: every check runs before anything is written."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from authz.core.crypto import b64url_decode
from authz.core.fetch import FetchError, check_url
from authz.identity.agents.errors import Invalid
from authz.oauth.client_auth import ALGORITHMS

MAX_NAME = 255
MAX_DESCRIPTION = 2000
MAX_TAGS = 32
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
TEAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$"
MAX_OVERLAP = 30 * 86400
DEFAULT_OVERLAP = 86400
PUBLIC_KTY = ("EC", "RSA", "OKP")
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048
MAX_JWK_BYTES = 8 * 1024

_TAG = re.compile(TAG_PATTERN)
_TEAM = re.compile(TEAM_NAME_PATTERN)


class Problems:
    """Collects field errors so one response names every bad field."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append((field, message))

    def raise_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)


def check_name(p: Problems, name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        p.add(field, "must be a non-empty string")
        return ""
    name = name.strip()
    if len(name) > MAX_NAME:
        p.add(field, f"must be at most {MAX_NAME} characters")
    if any(ord(c) < 32 for c in name):
        p.add(field, "must not contain control characters")
    return name


def check_team_name(p: Problems, name: object) -> str:
    if not isinstance(name, str) or not _TEAM.match(name):
        p.add("name", "must be 1-100 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit")
        return ""
    return name


def check_description(p: Problems, description: object) -> str:
    if not isinstance(description, str):
        p.add("description", "must be a string")
        return ""
    if len(description) > MAX_DESCRIPTION:
        p.add("description", f"must be at most {MAX_DESCRIPTION} characters")
    return description


def check_tags(p: Problems, tags: object) -> list[str]:
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        p.add("tags", "must be a list of strings")
        return []
    if len(tags) > MAX_TAGS:
        p.add("tags", f"at most {MAX_TAGS} tags")
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        p.add("tags", f"invalid tag {bad[0]!r}: 1-64 of letters, digits, '.', '_', ':', '/', '-'")
    return list(dict.fromkeys(tags))


def check_overlap(p: Problems, overlap: object) -> int:
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= MAX_OVERLAP:
        p.add("overlap_seconds", f"must be an integer from 0 to {MAX_OVERLAP}")
        return 0
    return overlap


def check_public_jwk(p: Problems, jwk: object, field: str = "jwk") -> dict[str, Any] | None:
    """A public signing key: EC, RSA (>= 2048 bits) or OKP; never a private or symmetric key.
    Returns the key with ``kid`` set (the RFC 7638 thumbprint when the caller gave none)."""
    if not isinstance(jwk, dict):
        p.add(field, "must be a JSON object (a JWK)")
        return None
    if len(repr(jwk)) > MAX_JWK_BYTES:
        p.add(field, "is too large")
        return None
    kty = jwk.get("kty")
    if kty not in PUBLIC_KTY:
        p.add(field, "kty must be EC, RSA or OKP (symmetric keys are refused)")
        return None
    if PRIVATE_MEMBERS & jwk.keys():
        p.add(field, "is a private key: register the public key only")
        return None
    if "alg" in jwk and jwk["alg"] not in ALGORITHMS:
        p.add(field, f"alg must be one of {', '.join(ALGORITHMS)}")
        return None
    if jwk.get("use", "sig") != "sig":
        p.add(field, "use must be 'sig'")
        return None
    if "kid" in jwk and (not isinstance(jwk["kid"], str) or not 0 < len(jwk["kid"]) <= 128):
        p.add(field, "kid must be a string of 1-128 characters")
        return None
    if kty == "RSA" and _rsa_bits(jwk) < MIN_RSA_BITS:
        p.add(field, f"RSA keys need at least {MIN_RSA_BITS} bits")
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        p.add(field, f"is not a valid public JWK ({type(exc).__name__})")
        return None
    if key.is_private:
        p.add(field, "is a private key: register the public key only")
        return None
    public = dict(jwk)
    public.setdefault("kid", key.thumbprint())
    return public


def _rsa_bits(jwk: dict[str, Any]) -> int:
    try:
        return len(b64url_decode(str(jwk.get("n", "")))) * 8
    except ValueError:
        return 0


def check_jwks_uri(p: Problems, url: object, allow_loopback: bool) -> str:
    if not isinstance(url, str) or not url:
        p.add("jwks_uri", "must be a URL")
        return ""
    try:
        check_url(url, allow_loopback=allow_loopback)
    except FetchError as exc:
        p.add("jwks_uri", f"not allowed: {exc}")
    return url


def distinct_kid(p: Problems, jwk: dict[str, Any], live_keys: Sequence[dict[str, Any]]) -> None:
    if any(k.get("kid") == jwk.get("kid") for k in live_keys):
        p.add("jwk", f"a live key of this agent already has kid {jwk.get('kid')!r}")
