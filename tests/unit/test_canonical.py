"""canonical_json is byte-identical to rfc8785.dumps (the reference), on the fast path and off it."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.canonical import MAX_FAST_DEPTH, _plain, canonical_json

SAFE = 2**53 - 1

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # every code point, control characters and lone surrogates included
)
keys = st.text(max_size=8) | st.sampled_from(["a", "B", "_", "é", "\U0001f600", "\ufb01", "\x00", '"'])
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5) | st.tuples(children, children)
    ),
    max_leaves=30,
)
# Values shaped like what the gateway signs: these must all take the fast path.
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(st.characters(max_codepoint=127)), children)
    ),
    max_leaves=30,
)


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=250, deadline=None)
@given(values)
def test_same_bytes_or_same_error_as_the_reference(value: Any) -> None:
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        with pytest.raises(expected):
            canonical_json(value)


@settings(max_examples=150, deadline=None)
@given(plain)
def test_gateway_shaped_values_take_the_fast_path(value: Any) -> None:
    assert _plain(value, 0)
    assert canonical_json(value) == rfc8785.dumps(value)


class Colour(enum.StrEnum):
    RED = "RED"


@pytest.mark.parametrize(
    "value",
    [
        {"k": 1.0},
        {"k": ("a", "b")},
        {"k": Colour.RED},
        {"é": 1},
        {"k": 2**53},
        {"k": -(2**53)},
        {"k": True.__class__(1)},
    ],
)
def test_values_outside_the_fast_path_use_the_reference(value: Any) -> None:
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        with pytest.raises(expected):
            canonical_json(value)


def test_escapes_and_key_order_match_rfc8785_examples() -> None:
    value = {"b": '\u20ac$\x0f\nA\'B"\\\\"/', "a": [None, True, False, -0, 9007199254740991], "\x7f": "\x7f"}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).startswith(b'{"a":[null,true,false,0,9007199254740991],"b":"')


def test_lone_surrogate_raises_like_the_reference() -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"k": "\ud800"})


def test_depth_is_bounded_then_falls_back() -> None:
    deep: Any = "x"
    for _ in range(MAX_FAST_DEPTH + 2):
        deep = [deep]
    assert not _plain(deep, 0)
    assert canonical_json(deep) == rfc8785.dumps(deep)


def test_every_code_point_is_written_as_the_reference_writes_it() -> None:
    # The fast path's encoder escapes strings itself: hold it to the reference on every scalar value, in
    # strings of 4,096 code points (as values and as keys, where the key stays ASCII-only: the fast path's exact types).
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    chunks = ["".join(map(chr, code_points[i : i + 4096])) for i in range(0, len(code_points), 4096)]
    assert _plain(chunks, 0)
    assert canonical_json(chunks) == rfc8785.dumps(chunks)
    assert canonical_json({"k": chunks[0], "a\x7f": [chunks[1]]}) == rfc8785.dumps(
        {"k": chunks[0], "a\x7f": [chunks[1]]}
    )
