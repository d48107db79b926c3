"""The token endpoint's form parser reads a body exactly as ``urllib.parse.parse_qsl`` does."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.oauth.requests import parse_form

CASES = [
    "",
    "&",
    "&&a=1&&",
    "grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=tools%3Aread+tools%3Awrite",
    "a",
    "a=",
    "=b",
    "=",
    "a==b",
    "a=b=c",
    "a+b=c+d",
    "a%20b=c%2Bd",
    "x=%",
    "x=%zz",
    "x=%C3%A9",
    "x=%C3",
    "x=%FF%FE",
    "x=é",
    "a=1&a=2&b=",
    "a=1;b=2",
    "%3D=%26",
]


@pytest.mark.parametrize("text", CASES)
def test_parse_form_equals_parse_qsl(text: str) -> None:
    assert parse_form(text) == parse_qsl(text, keep_blank_values=False, strict_parsing=False)


@given(st.text(alphabet="ab=&+%0123456789ACDEFé; \n", max_size=40))
def test_parse_form_equals_parse_qsl_on_any_text(text: str) -> None:
    assert parse_form(text) == parse_qsl(text, keep_blank_values=False, strict_parsing=False)
