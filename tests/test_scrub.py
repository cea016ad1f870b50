"""Scrubbing the key from a server's words: the quick test that lets most texts through
untouched never lets a run of the key through."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.targets.http import KEY_RUN, scrub

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
