"""The audit record serialisation is RFC 8785: the fast path agrees with the ``rfc8785`` library."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from authz.audit.canonical import canonical

scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)


@given(values)
def test_fast_path_equals_the_reference_implementation(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_rfc8785_examples() -> None:
    """RFC 8785 §3.2.3 sorts by UTF-16 code units; §3.2.2.2 escapes only what it must."""
    assert canonical({"b": 1, "a": [True, None, "\u20ac\n\x1f"]}) == b'{"a":[true,null,"\xe2\x82\xac\\n\\u001f"],"b":1}'
    assert canonical({"\U0001f600": 1, "\ufb33": 2}) == rfc8785.dumps({"\U0001f600": 1, "\ufb33": 2})
    assert canonical({"cost": 1.5e-7}) == b'{"cost":1.5e-7}'
    with pytest.raises(ValueError):
        canonical({"n": 2**60})
