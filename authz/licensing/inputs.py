"""Input rules for licensing: every check runs before anything is read or written."""

from __future__ import annotations

import re
from typing import Any

from authz.identity.agents.validation import Problems
from authz.licensing.files import MAX_TTL, MIN_TTL
from authz.licensing.liveness import CULL_STRATEGIES

MAX_FINGERPRINT = 255
MAX_NAME = 255
MAX_PLATFORM = 64
MAX_NONCE = 128
MAX_ENTITLEMENTS = 64
ENTITLEMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EXPIRATION_STRATEGIES = ("restrict", "maintain")


def text(p: Problems, field: str, value: Any, *, max_len: int, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            p.add(field, "is required")
        return ""
    if not isinstance(value, str):
        p.add(field, "must be a string")
        return ""
    if len(value) > max_len:
        p.add(field, f"must be at most {max_len} characters")
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        p.add(field, "must not contain control characters")
        return ""
    return value


def fingerprint(p: Problems, value: Any, field: str = "fingerprint", required: bool = True) -> str:
    return text(p, field, value, max_len=MAX_FINGERPRINT, required=required)


def nonce(p: Problems, value: Any) -> str | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        p.add("nonce", "must be a string or an integer")
        return None
    if isinstance(value, str) and (len(value) > MAX_NONCE or not value.isprintable()):
        p.add("nonce", f"must be at most {MAX_NONCE} printable characters")
        return None
    if isinstance(value, int) and abs(value) >= 2**63:
        p.add("nonce", "must fit in 64 bits")
        return None
    return value


def entitlements(p: Problems, value: Any, field: str = "entitlements") -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ENTITLEMENTS:
        p.add(field, f"must be a list of at most {MAX_ENTITLEMENTS} names")
        return ()
    bad = [v for v in value if not isinstance(v, str) or not ENTITLEMENT.match(v)]
    if bad:
        p.add(field, "each must be a name of letters, digits and . _ : - (at most 64 characters)")
        return ()
    return tuple(dict.fromkeys(value))


def seconds(p: Problems, field: str, value: Any, *, low: int, high: int, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        p.add(field, f"must be an integer from {low} to {high}")
        return None
    return value


def ttl(p: Problems, value: Any) -> int | None:
    return seconds(p, "ttl", value, low=MIN_TTL, high=MAX_TTL)


def choice(p: Problems, field: str, value: Any, options: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in options:
        p.add(field, f"must be one of {', '.join(options)}")
        return default
    return str(value)


def cull(p: Problems, value: Any) -> str:
    return choice(p, "cull_strategy", value, CULL_STRATEGIES, "deactivate_dead")
