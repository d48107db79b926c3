"""RFC 8785 (JSON Canonicalization Scheme) bytes of an audit record: what a Merkle leaf hashes.

RFC 8785 §3.2: no whitespace; §3.2.2.2 strings escape only '"', '\\\\' and the control characters
(U+0008, U+0009, U+000A, U+000C, U+000D as two-character escapes, the rest as lowercase \\u00xx), all
other characters are UTF-8; §3.2.3 object members are sorted by their names as UTF-16 code units;
§3.2.2.3 numbers use the ECMAScript serialisation. For records made of strings, integers, booleans,
null, arrays and objects whose keys are in the Basic Multilingual Plane (UTF-16 order = code point
order there) that is exactly ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``; anything else (floats, astral keys) goes through the ``rfc8785`` library.
Integers beyond IEEE 754's exact range (2**53) are refused, as RFC 8785 §3.2.2.3 asks.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

MAX_SAFE_INT = 2**53 - 1


def _simple(value: Any) -> bool:
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise ValueError("integers in an audit record must be within +-(2**53 - 1) (RFC 8785 §3.2.2.3)")
        return True
    if isinstance(value, list | tuple):
        return all(_simple(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and max(k, default=" ") < "\ud800" and _simple(v) for k, v in value.items())
    return False


def canonical(value: Any) -> bytes:
    """The RFC 8785 serialisation of ``value`` as UTF-8 bytes."""
    if _simple(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return rfc8785.dumps(value)
