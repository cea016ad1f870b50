"""The canonical bytes every payload hash is taken of: orjson's text where it is the
standard encoder's, byte for byte, and the standard encoder's where it is not."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.rows.hashes import canonical_bytes, canonical_json, payload_hash

# Any text (lone surrogates included), numbers of every size and kind, nested lists and
# objects: what a payload could ever hold, and more.
scalars = (
    st.text(alphabet=st.characters(), max_size=12)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(), max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def standard(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8", "surrogatepass")


@settings(max_examples=600, deadline=None)
@given(values)
def test_canonical_bytes_are_the_standard_encoders_text(value: Any) -> None:
    assert canonical_bytes(value) == standard(value)


def test_what_orjson_writes_differently_or_refuses_is_left_to_the_standard_encoder() -> None:
    for value in (
        {"t": "\ud83d alone"},  # a lone surrogate: orjson refuses it
        {"n": 2**70},  # past 64 bits: refused
        {"x": math.nan, "y": -math.inf},  # orjson would write null
        {"b": None, "s": "null"},
        {"k": "\u2028\x7f\x00\x1f é 😀"},
    ):
        assert canonical_bytes(value) == standard(value)


def test_the_hash_of_a_payload_does_not_change_with_key_order() -> None:
    first = {"title": "Intro", "participants": [{"name": "Ana", "email": "a@x.io"}], "n": 1}
    second = {"n": 1, "participants": [{"email": "a@x.io", "name": "Ana"}], "title": "Intro"}
    assert payload_hash(first) == payload_hash(second)
    assert payload_hash(first) != payload_hash({**first, "title": "Intro "})
