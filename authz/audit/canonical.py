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


_PLAIN = (str, bool, type(None))
# built once: json.dumps with arguments builds a new JSONEncoder per call (the same bytes either way)
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _simple(value: Any) -> bool:
    """True when ``json.dumps`` already produces RFC 8785 for ``value`` (no floats, BMP keys)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return True
        raise ValueError("integers in an audit record must be within +-(2**53 - 1) (RFC 8785 §3.2.2.3)")
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                return False
            t = type(v)
            if not (t is str or t is bool or v is None) and not _simple(v):
                return False
        return True
    if kind is list or kind is tuple:
        for v in value:
            t = type(v)
            if not (t is str or t is bool or v is None) and not _simple(v):
                return False
        return True
    return False


def canonical(value: Any) -> bytes:
    """The RFC 8785 serialisation of ``value`` as UTF-8 bytes."""
    if _simple(value):
        return _ENCODE(value).encode("utf-8")
    return rfc8785.dumps(value)
