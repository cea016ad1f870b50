"""Scrubbing the key from a server's words: the quick test that lets most texts through
untouched never lets a run of the key through."""

from __future__ import annotations

import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.targets.http import KEY_RUN, Answer, scrub, scrub_value

KEY = "sk-apik_0123456789ABCDEFGHIJklmnopqrstuv"


def marked(text: str, api_key: str) -> list[bool]:
    """Which characters of ``text`` belong to the key or to a run of KEY_RUN of it."""
    marks = [False] * len(text)
    runs = {api_key} | {api_key[i : i + KEY_RUN] for i in range(len(api_key) - KEY_RUN + 1)}
    for run in runs:
        start = text.find(run)
        while run and start >= 0:
            marks[start : start + len(run)] = [True] * len(run)
            start = text.find(run, start + 1)
    return marks


pieces = st.builds(
    lambda start, length: KEY[start : start + length],
    st.integers(0, len(KEY)),
    st.integers(0, len(KEY)),
)
texts = st.lists(st.one_of(pieces, st.text(max_size=6)), max_size=6).map("".join)


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_no_run_of_the_key_survives_and_nothing_else_is_touched(text: str) -> None:
    scrubbed = scrub(text, KEY)
    for run_start in range(len(KEY) - KEY_RUN + 1):
        assert KEY[run_start : run_start + KEY_RUN] not in scrubbed
    if not any(marked(text, KEY)):
        assert scrubbed == text
    else:
        assert "[API key]" in scrubbed


@given(st.text(max_size=20), st.text(min_size=1, max_size=KEY_RUN - 1))
def test_a_key_shorter_than_a_run_is_replaced_where_it_stands_whole(
    text: str, short_key: str
) -> None:
    written = text + short_key + text
    assert scrub(written, short_key) == written.replace(short_key, "[API key]")


json_values = st.recursive(
    st.one_of(st.none(), st.integers(), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(json_values, st.booleans())
def test_an_answers_json_is_scrubbed_as_every_string_one_by_one(
    value: object, ensure_ascii: bool
) -> None:
    # The quick path (no walk when the body holds no block of the key) must agree with
    # the walk, escapes (\u0041 for A) and non-ASCII text included.
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    answer = Answer(200, httpx.Headers(), body)
    assert answer.scrubbed_json(KEY) == scrub_value(answer.json(), KEY)


def test_a_key_written_with_escapes_is_scrubbed_from_an_answer() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
    answer = Answer(200, httpx.Headers(), f'{{"echo": "{escaped}"}}'.encode())
    assert answer.scrubbed_json(KEY) == {"echo": "[API key]"}
    plain = Answer(200, httpx.Headers(), f'{{"echo": "x{KEY[3:20]}"}}'.encode())
    assert KEY[3:20] not in plain.scrubbed_json(KEY)["echo"]
