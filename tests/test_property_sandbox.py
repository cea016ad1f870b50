"""Property (issue 5, item 10): a row the importer calls valid is a create the API accepts.

For arbitrary cell values, ``map_row`` either returns row errors, or a payload that the
sandbox (which enforces the documented create rules) answers with 201 or 200. A 422 for a
payload the importer passed would be a wasted request per row in production and a row
marked failed instead of fixed up front.

Media URLs only ever name hosts under example.com or address literals: the sandbox never
looks those up, so the test stays off the network.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from importer.rows import contract
from importer.rows.validate import MappingOptions, map_row
from tests.conftest import SANDBOX_KEY, Sandbox

# Any character a CSV cell can hold, including the lone surrogates that stand for bytes
# that were not UTF-8 (surrogateescape), and other surrogates, which no reader produces.
CELL_CHARS = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(CELL_CHARS, max_size=30)
SPACES = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u3000"])
INVISIBLE = st.sampled_from(["\u200b", "\ufeff", "\u2060", "\x00", "\x7f", "\r\n"])


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Values with white space (of every kind) around them."""
    return st.builds(lambda a, v, b: a + v + b, SPACES, values, SPACES)


def smudged(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Values with an invisible character at either end (a copy-paste artefact)."""
    return st.builds(lambda a, v, b: a + v + b, INVISIBLE | SPACES, values, INVISIBLE | SPACES)


HOSTS = st.one_of(
    st.sampled_from(
        [
            "media.example.com",
            "MEDIA.Example.COM",
            "media.example.com.",
            "example.com",
            "cdn.example.org",
            "a.b.example",
            "93.184.216.34",
            "127.0.0.1",
            "127.1",
            "0x7f.1",
            "10.0.0.5",
            "169.254.169.254",
            "[::1]",
            "[2606:2800:220:1::1]",
            "[::ffff:10.0.0.1]",
            "localhost",
            "x.localhost",
            "user:pw@media.example.com",
            "media.example.com:443",
            "media.example.com:99999",
            "media.example.com:x",
            "",
        ]
    ),
    st.from_regex(r"\A[a-z0-9-]{1,12}\.example\.com\Z"),
)
PATH = st.text(
    st.one_of(
        st.sampled_from("abcXYZ019-_.~/%@:;!$&'()*+,= \\\t"),
        st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF),
    ),
    max_size=15,
)
EXTENSIONS = st.sampled_from([*contract.MEDIA_EXTENSIONS, ".MP3", ".Mp4"])
MEDIA_URLS = st.one_of(
    st.builds(
        lambda scheme, host, path, ext: f"{scheme}://{host}/{path}{ext}",
        st.sampled_from(["https", "HTTPS", "http", "ftp"]),
        HOSTS,
        PATH,
        EXTENSIONS,
    ),
    # Not a URL with a host a resolver would be asked about.
    st.builds(lambda t: "media " + t, ANY_TEXT),
    st.just(""),
)
MOMENTS = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31))
ZONES = st.sampled_from(
    [
        None,
        dt.timezone.utc,
        dt.timezone(dt.timedelta(hours=14)),
        dt.timezone(-dt.timedelta(hours=12)),
    ]
)
START_AT = st.one_of(
    st.builds(lambda m, z: m.replace(tzinfo=z).isoformat(), MOMENTS, ZONES),
    st.builds(lambda m: m.strftime("%Y-%m-%d %H:%M"), MOMENTS),
    st.builds(lambda m: m.isoformat() + "Z", MOMENTS),
    st.builds(lambda m: m.date().isoformat(), MOMENTS),
    st.integers(-(10**14), 10**14).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    ANY_TEXT,
)
EMAILS = st.one_of(
    st.emails(domains=st.just("example.com")), st.sampled_from(["a@b", "@x.com", "a b@c.d"])
)
PARTICIPANT = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(ANY_TEXT, st.integers(), st.none()),
        "email": st.one_of(EMAILS, ANY_TEXT, st.none()),
        "phone": st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none()),
        "is_owner": st.one_of(st.booleans(), st.just("true"), st.none()),
    },
)
PARTICIPANTS = st.one_of(
    st.just(""),
    st.lists(PARTICIPANT, max_size=3).map(json.dumps),
    st.lists(st.builds(lambda n, e: f"{n} <{e}>", ANY_TEXT, EMAILS), max_size=3).map("; ".join),
    ANY_TEXT,
)
PLAIN_TEXT = st.text(min_size=1, max_size=40)  # no surrogates: what a UTF-8 file holds
PLAUSIBLE_MOMENTS = st.datetimes(
    min_value=dt.datetime(1990, 1, 2), max_value=dt.datetime(2099, 12, 30)
)
# Per field: values a CRM export plausibly holds (mostly valid), and hostile ones.
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "id": st.one_of(padded(st.from_regex(r"\A[A-Za-z0-9:-]{1,12}\Z")), PLAIN_TEXT),
    "type": padded(st.sampled_from(["CALL", "call", "Meeting", "MEETING"])),
    "title": st.one_of(padded(PLAIN_TEXT), st.just("t" * 500)),
    "media_url": padded(
        st.builds(
            lambda host, path, ext: f"https://{host}/{path}{ext}",
            st.one_of(
                st.just("media.example.com"), st.from_regex(r"\A[a-z0-9]{1,8}\.example\.com\Z")
            ),
            PATH,
            EXTENSIONS,
        )
    ),
    "start_at": padded(
        st.one_of(
            st.builds(lambda m, z: m.replace(tzinfo=z).isoformat(), PLAUSIBLE_MOMENTS, ZONES),
            st.builds(lambda m: m.strftime("%Y-%m-%d %H:%M"), PLAUSIBLE_MOMENTS),
            st.builds(lambda m: str(int(m.timestamp())), PLAUSIBLE_MOMENTS),
        )
    ),
    "is_private": padded(st.sampled_from(["", "true", "FALSE", "yes", "n", "1", "0"])),
    "participants": st.one_of(
        st.just(""),
        st.lists(
            st.fixed_dictionaries(
                {"name": PLAIN_TEXT}, optional={"email": st.emails(domains=st.just("example.com"))}
            ),
            max_size=3,
        ).map(json.dumps),
        st.lists(
            st.builds(lambda n, e: f"{n} <{e}>", st.from_regex(r"\A[A-Za-z ]{1,10}\Z"), EMAILS),
            max_size=3,
        ).map("; ".join),
    ),
    "transcript_text": st.one_of(st.just(""), st.text(max_size=60)),
    "source_system": st.one_of(padded(st.sampled_from(["crm", "salesforce"])), PLAIN_TEXT),
}
HOSTILE: dict[str, st.SearchStrategy[str]] = {
    "id": st.one_of(ANY_TEXT, st.just("i" * 500)),
    "type": st.one_of(ANY_TEXT, smudged(PLAUSIBLE["type"])),
    "title": st.one_of(ANY_TEXT, st.just("t" * 501), SPACES, smudged(PLAUSIBLE["title"])),
    "media_url": st.one_of(padded(MEDIA_URLS), smudged(PLAUSIBLE["media_url"])),
    "start_at": st.one_of(padded(START_AT), smudged(PLAUSIBLE["start_at"])),
    "is_private": st.one_of(ANY_TEXT, smudged(PLAUSIBLE["is_private"])),
    "participants": PARTICIPANTS,
    "transcript_text": ANY_TEXT,
    "source_system": st.one_of(ANY_TEXT, st.just("s" * 101)),
}


@st.composite
def manifest_cells(draw: st.DrawFn) -> dict[str, str]:
    """A row with up to three hostile cells; the rest plausible."""
    hostile = draw(st.sets(st.sampled_from(sorted(HOSTILE)), max_size=3))
    return {name: draw(HOSTILE[name] if name in hostile else PLAUSIBLE[name]) for name in PLAUSIBLE}


CELLS = manifest_cells()
VALID_CELLS = {
    "id": "1",
    "type": "CALL",
    "title": "Call",
    "media_url": "https://media.example.com/a.mp3",
    "start_at": "2024-03-05T14:30:00Z",
    "is_private": "",
    "participants": "",
    "transcript_text": "",
    "source_system": "crm",
}


def post(client: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    """The create exactly as the importer sends it (its JSON encoding included)."""
    content = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    headers = {"Content-Type": "application/json"}
    return client.post("/v2/engagements", content=content, headers=headers)


@pytest.fixture
def client(sandbox: Sandbox) -> Any:
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10.0) as http:
        yield http


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cells=CELLS, zone=st.sampled_from(["UTC", "Europe/Paris", "Pacific/Kiritimati"]))
@example(cells=VALID_CELLS, zone="UTC")
# Found by this test: a trailing zero-width space (str.strip keeps it) made a 422.
@example(cells={**VALID_CELLS, "media_url": "https://media.example.com/a.mp3\u200b"}, zone="UTC")
def test_a_row_the_importer_accepts_is_a_create_the_api_accepts(
    client: httpx.Client, cells: dict[str, str], zone: str
) -> None:
    row = map_row(
        {**cells, "transcript_path": "", "contact_ids": ""}, 2, MappingOptions(timezone=zone)
    )
    event("valid" if row.valid else "invalid")
    if not row.valid:
        assert row.errors and row.payload is None
        return
    assert row.payload is not None

    response = post(client, row.payload)

    assert response.status_code in (200, 201), (row.payload, response.text)
