"""The JSON loader for untrusted bytes: size, syntax and depth all become one ValueError."""

from __future__ import annotations

import json

import pytest

from guard import jsonload
from guard.jsonload import MAX_DEPTH, JsonRefused, load_json

DEEP = b"[" * 15_000  # under every size limit; json.loads raises RecursionError on it


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deep_nesting_is_refused_as_too_deep_not_a_recursion_error() -> None:
    with pytest.raises(RecursionError):
        json.loads(DEEP)  # the bug the loader exists for
    for body in (DEEP, nested(5_000), b'{"a":' * 5_000 + b"1" + b"}" * 5_000, nested(200)):
        with pytest.raises(jsonload.JsonRefused) as info:
            jsonload.load_json(body, max_bytes=64 * 1024)
        assert info.value.reason == "too_deep" and isinstance(info.value, ValueError)


def test_the_depth_limit_is_exact() -> None:
    assert load_json(nested(MAX_DEPTH), max_bytes=10_000) is not None
    with pytest.raises(JsonRefused) as info:
        load_json(nested(MAX_DEPTH + 1), max_bytes=10_000)
    assert info.value.reason == "too_deep"
    assert load_json(nested(3), max_bytes=100, max_depth=3) == [[[]]]
    with pytest.raises(JsonRefused):
        load_json(b'{"a": {"b": [1]}}', max_bytes=100, max_depth=2)


def test_wide_and_bracket_laden_documents_are_fine() -> None:
    wide = json.dumps([{"k": [1, 2, {"x": "["}]} for _ in range(5_000)]).encode()
    assert len(load_json(wide, max_bytes=len(wide))) == 5_000
    brackets_in_strings = json.dumps({"s": "[" * 10_000}).encode()
    assert load_json(brackets_in_strings, max_bytes=len(brackets_in_strings)) == {"s": "[" * 10_000}
    assert load_json('{"é": "ü"}', max_bytes=100) == {"é": "ü"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{" + b" " * 100 + b"}", "too_large"),
        (b"{", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"", "not_json"),
        (b"1" * 5_000, "not_json"),  # more digits than int() converts
    ],
)
def test_size_and_syntax_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(JsonRefused) as info:
        load_json(body, max_bytes=100 if reason == "too_large" else 10_000)
    assert info.value.reason == reason
    assert body.decode("latin-1")[:20] not in str(info.value) or not body
