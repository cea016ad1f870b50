"""The sandbox speaks the documented engagements API: rules, idempotency, auth, reads."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from importer.rows import contract
from tests.conftest import SANDBOX_KEY, Sandbox, engagement_body
from tests.sandbox_inprocess import InProcessSandbox

EXPAND_KEYS = set(contract.EXPAND_VALUES)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer, after checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "request_id", "errors"} <= body.keys()
    assert body["status"] == status
    return dict(body)


def error_fields(response: httpx.Response) -> set[tuple[str, str]]:
    """(field, code) of every validation error in a 422."""
    return {(e["field"], e["code"]) for e in problem(response, 422)["errors"]}


def create(client: httpx.Client, **changes: Any) -> httpx.Response:
    """POST a valid body with these changes."""
    return client.post("/v2/engagements", json=engagement_body(**changes))


def without(field: str) -> dict[str, Any]:
    """A valid body missing one field."""
    body = engagement_body()
    del body[field]
    return body


# -- create: the documented rules -------------------------------------------------------


def test_create_answers_201_with_the_engagement(sandbox_client: httpx.Client) -> None:
    body = engagement_body(title="Renewal call", is_private=False)
    response = sandbox_client.post("/v2/engagements", json=body)
    assert response.status_code == 201
    assert response.headers["x-api-version"]
    created = response.json()
    assert contract.ENGAGEMENT_ID_PATTERN.match(created["id"])
    assert created["title"] == "Renewal call"
    assert created["engagement_type"] == "CALL"
    assert created["processing_status"] == "QUEUED"
    assert created["external_id"] == body["external_id"]
    assert created["source_system"] == "tests"
    assert created["start_at"] == "2024-05-01T14:30:00.000Z"
    assert created["is_private"] is False
    assert created["duration_seconds"] is None
    assert created["data_source"] == "api"
    assert not EXPAND_KEYS & created.keys()


def test_missing_start_at_means_now(sandbox_client: httpx.Client) -> None:
    body = without("start_at")
    response = sandbox_client.post("/v2/engagements", json=body)
    start = datetime.fromisoformat(response.json()["start_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - start).total_seconds()) < 5


def test_start_at_with_offset_is_stored_in_utc(sandbox_client: httpx.Client) -> None:
    response = create(sandbox_client, start_at="2024-05-01T16:30:00+02:00")
    assert response.json()["start_at"] == "2024-05-01T14:30:00.000Z"


def test_unknown_fields_are_ignored(sandbox_client: httpx.Client) -> None:
    response = create(sandbox_client, crm_owner="alice", external_url="https://crm.example.com")
    assert response.status_code == 201
    assert "crm_owner" not in response.json()


def test_meeting_with_participants_and_transcript(sandbox: Sandbox) -> None:
    participants = [
        {"name": "Ann", "email": "ann@example.com", "is_owner": True},
        {"email": "bob@example.com", "phone": "+15550100"},
        {"name": "Carla"},
    ]
    body = engagement_body(type="MEETING", participants=participants, transcript_text="hi 👋")
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": SANDBOX_KEY}) as c:
        assert c.post("/v2/engagements", json=body).status_code == 201
    [stored] = sandbox.engagements()
    assert stored["participants"] == participants
    assert stored["transcript"] == "hi 👋"
    assert stored["run_workflows"] is False


TWO_OWNERS = [{"name": "A", "is_owner": True}, {"name": "B", "is_owner": True}]
LOOPBACK_NAME = socket.gethostname()

INVALID_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    *[
        (f"missing {name}", without(name), name, "required")
        for name in ("type", "title", "source_system", "external_id", "media_url", "run_workflows")
    ],
    ("type WEBINAR", engagement_body(type="WEBINAR"), "type", "invalid_choice"),
    ("type lower case", engagement_body(type="call"), "type", "invalid_choice"),
    ("empty title", engagement_body(title=""), "title", "required"),
    ("title 501", engagement_body(title="t" * 501), "title", "too_long"),
    ("title not text", engagement_body(title=5), "title", "type"),
    ("source_system 101", engagement_body(source_system="s" * 101), "source_system", "too_long"),
    ("external_id 501", engagement_body(external_id="e" * 501), "external_id", "too_long"),
    ("empty external_id", engagement_body(external_id=""), "external_id", "required"),
    ("run_workflows string", engagement_body(run_workflows="false"), "run_workflows", "type"),
    ("run_workflows null", engagement_body(run_workflows=None), "run_workflows", "type"),
    ("is_private string", engagement_body(is_private="yes"), "is_private", "type"),
    ("start_at words", engagement_body(start_at="yesterday"), "start_at", "invalid_datetime"),
    ("start_at date only", engagement_body(start_at="2024-05-01"), "start_at", "invalid_datetime"),
    ("start_at number", engagement_body(start_at=1714574400), "start_at", "invalid_datetime"),
    ("participants not list", engagement_body(participants="ann"), "participants", "type"),
    ("participant not object", engagement_body(participants=["ann"]), "participants[0]", "type"),
    (
        "participant without name or email",
        engagement_body(participants=[{"phone": "+15550100"}]),
        "participants[0]",
        "required",
    ),
    (
        "participant bad email",
        engagement_body(participants=[{"name": "A", "email": "not-an-email"}]),
        "participants[0].email",
        "invalid_email",
    ),
    (
        "participant name not text",
        engagement_body(participants=[{"name": 5, "email": "a@example.com"}]),
        "participants[0].name",
        "type",
    ),
    (
        "is_owner not boolean",
        engagement_body(participants=[{"name": "A", "is_owner": "yes"}]),
        "participants[0].is_owner",
        "type",
    ),
    ("two owners", engagement_body(participants=TWO_OWNERS), "participants", "multiple_owners"),
    (
        "transcript too many characters",
        engagement_body(transcript_text="a" * (contract.TRANSCRIPT_MAX_CHARS + 1)),
        "transcript_text",
        "too_long",
    ),
    (
        "transcript too many bytes",
        engagement_body(transcript_text="漢" * (contract.TRANSCRIPT_MAX_BYTES // 3 + 1)),
        "transcript_text",
        "too_large",
    ),
    ("transcript not text", engagement_body(transcript_text=5), "transcript_text", "type"),
    *[
        (f"media_url {url}", engagement_body(media_url=url), "media_url", code)
        for url, code in [
            ("http://media.example.com/a.mp3", "https_required"),
            ("ftp://media.example.com/a.mp3", "https_required"),
            ("https://10.1.2.3/a.mp3", "private_address"),
            ("https://172.16.0.9/a.mp3", "private_address"),
            ("https://192.168.1.20/a.mp3", "private_address"),
            ("https://127.0.0.1/a.mp3", "private_address"),
            ("https://127.1/a.mp3", "private_address"),
            ("https://0x7f.0.0.1/a.mp3", "private_address"),
            ("https://169.254.169.254/a.mp3", "private_address"),
            ("https://[::1]/a.mp3", "private_address"),
            ("https://[fe80::1]/a.mp3", "private_address"),
            ("https://[::ffff:10.0.0.1]/a.mp3", "private_address"),
            ("https://localhost/a.mp3", "private_address"),
            ("https://media.localhost/a.mp3", "private_address"),
            ("https://media.example.com/notes.pdf", "unsupported_media_type"),
            ("https://media.example.com/calls/1", "unsupported_media_type"),
            ("", "required"),
            (5, "required"),
        ]
    ],
]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_create_rule_violations_answer_422(
    sandbox_client: httpx.Client, body: dict[str, Any], field: str, code: str
) -> None:
    response = sandbox_client.post("/v2/engagements", json=body)
    assert (field, code) in error_fields(response)


def test_non_media_extension_says_not_audio_video(sandbox_client: httpx.Client) -> None:
    response = create(sandbox_client, media_url="https://media.example.com/page.html")
    assert "not audio/video" in problem(response, 422)["errors"][0]["message"]


def test_name_resolving_to_loopback_is_rejected(sandbox_client: httpx.Client) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(LOOPBACK_NAME, 443)}
    except OSError:
        pytest.skip("this machine's name does not resolve")
    if not all(addr.startswith(("127.", "10.", "192.168.", "::1")) for addr in addresses):
        pytest.skip("this machine's name resolves to a public address")
    response = create(sandbox_client, media_url=f"https://{LOOPBACK_NAME}/a.mp3")
    assert ("media_url", "private_address") in error_fields(response)


def test_every_problem_is_reported_at_once(sandbox: Sandbox) -> None:
    body = {
        "type": "WEBINAR",
        "title": "",
        "source_system": "s" * 101,
        "media_url": "http://10.0.0.1/a.mp3",
        "run_workflows": "no",
    }
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": SANDBOX_KEY}) as c:
        response = c.post("/v2/engagements", json=body)
    fields = {field for field, _ in error_fields(response)}
    assert fields == {"type", "title", "source_system", "external_id", "media_url", "run_workflows"}
    assert sandbox.stats()["engagements"] == 0


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'"text"', b"", "{}".encode("utf-16")]
)
def test_malformed_body_answers_400(sandbox_client: httpx.Client, content: bytes) -> None:
    response = sandbox_client.post(
        "/v2/engagements", content=content, headers={"content-type": "application/json"}
    )
    problem(response, 400)


# -- idempotency ------------------------------------------------------------------------


def test_known_external_id_answers_200_unchanged(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    body = engagement_body()
    first = sandbox_client.post("/v2/engagements", json=body)
    again = engagement_body(
        external_id=body["external_id"],
        title="Another title",
        source_system="another-crm",
        type="MEETING",
        media_url="https://media.example.com/other.mp4",
        is_private=True,
    )
    second = sandbox_client.post("/v2/engagements", json=again)
    assert (first.status_code, second.status_code) == (201, 200)
    kept = {"id", "title", "source_system", "engagement_type", "is_private", "created_at"}
    assert {k: second.json()[k] for k in kept} == {k: first.json()[k] for k in kept}
    stats = sandbox.stats()
    assert stats["engagements"] == 1
    assert stats["created"] == {body["external_id"]: 1}
    assert stats["hits"] == {body["external_id"]: 1}


def test_invalid_retry_of_known_external_id_is_still_422(sandbox_client: httpx.Client) -> None:
    body = engagement_body()
    sandbox_client.post("/v2/engagements", json=body)
    response = sandbox_client.post("/v2/engagements", json={**body, "type": "WEBINAR"})
    problem(response, 422)


# -- auth and scopes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-apik_nope.WRONG"}, {"Authorization": "Bearer"}],
    ids=["missing", "unknown", "empty"],
)
def test_bad_credentials_answer_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        problem(client.post("/v2/engagements", json=engagement_body()), 401)
        problem(client.get("/v2/engagements"), 401)


def test_bare_key_is_accepted(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": SANDBOX_KEY}) as c:
        assert c.post("/v2/engagements", json=engagement_body()).status_code == 201


def test_key_revoked_mid_run_answers_401(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-apik_temp.SECRET", contract.ALL_SCOPES)
    headers = {"Authorization": "Bearer sk-apik_temp.SECRET"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        assert client.post("/v2/engagements", json=engagement_body()).status_code == 201
        sandbox.revoke_key("sk-apik_temp.SECRET")
        problem(client.post("/v2/engagements", json=engagement_body()), 401)


def test_reset_restores_the_default_key(sandbox: Sandbox) -> None:
    sandbox.revoke_key(SANDBOX_KEY)
    sandbox.reset()
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": SANDBOX_KEY}) as c:
        assert c.get("/v2/engagements").status_code == 200


SCOPE_CASES = [
    ("engagements:write", "POST", "/v2/engagements", ""),
    ("engagements:write", "PUT", "/v2/engagements/{id}/contacts", ""),
    ("engagements:read", "GET", "/v2/engagements/{id}", ""),
    ("engagements:read", "GET", "/v2/engagements", ""),
    ("companies:read", "GET", "/v2/engagements/{id}", "companies"),
    ("contacts:read", "GET", "/v2/engagements/{id}", "contacts"),
    ("users:read", "GET", "/v2/engagements/{id}", "owner"),
]


@pytest.mark.parametrize(("scope", "method", "path", "expand"), SCOPE_CASES)
def test_missing_scope_answers_403_naming_it(
    sandbox: Sandbox,
    sandbox_client: httpx.Client,
    scope: str,
    method: str,
    path: str,
    expand: str,
) -> None:
    engagement_id = create(sandbox_client).json()["id"]
    sandbox.add_key("sk-apik_narrow.KEY", [s for s in contract.ALL_SCOPES if s != scope])
    headers = {"Authorization": "Bearer sk-apik_narrow.KEY"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        response = client.request(
            method,
            path.format(id=engagement_id),
            params={"expand": expand} if expand else None,
            json=engagement_body() if method == "POST" else {"contact_ids": []},
        )
    assert scope in problem(response, 403)["detail"]


def test_private_engagement_needs_private_read(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    engagement_id = create(sandbox_client, is_private=True).json()["id"]
    assert sandbox_client.get(f"/v2/engagements/{engagement_id}").json()["is_private"] is True
    scopes = [s for s in contract.ALL_SCOPES if s != contract.SCOPE_PRIVATE_READ]
    sandbox.add_key("sk-apik_public.KEY", scopes)
    headers = {"Authorization": "Bearer sk-apik_public.KEY"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        response = client.get(f"/v2/engagements/{engagement_id}")
        assert contract.SCOPE_PRIVATE_READ in problem(response, 403)["detail"]
        assert client.get("/v2/engagements").json()["data"] == []


# -- get --------------------------------------------------------------------------------


def test_get_unknown_engagement_answers_404(sandbox_client: httpx.Client) -> None:
    problem(sandbox_client.get("/v2/engagements/ngmt_doesnotexist"), 404)


def test_get_returns_what_create_returned(sandbox_client: httpx.Client) -> None:
    created = create(sandbox_client).json()
    got = sandbox_client.get(f"/v2/engagements/{created['id']}").json()
    assert got["id"] == created["id"]
    assert got["external_id"] == created["external_id"]
    assert not EXPAND_KEYS & got.keys()


def test_etag_and_if_none_match(sandbox_client: httpx.Client) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}"
    first = sandbox_client.get(path)
    etag = first.headers["etag"]
    cached = sandbox_client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["x-api-version"]
    assert sandbox_client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    sandbox_client.put(f"{path}/contacts", json={"contact_ids": ["cnt_ann"]})
    changed = sandbox_client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_processing_status_moves_on() -> None:
    async def scenario() -> None:
        async with InProcessSandbox(processing_seconds=0.5) as sandbox:
            client = sandbox.client
            good = (await client.post("/v2/engagements", json=engagement_body())).json()["id"]
            body = engagement_body(media_url="https://media.example.com/broken.mp3")
            broken = (await client.post("/v2/engagements", json=body)).json()["id"]

            async def statuses() -> tuple[str, str]:
                docs = [(await client.get(f"/v2/engagements/{i}")).json() for i in (good, broken)]
                return docs[0]["processing_status"], docs[1]["processing_status"]

            assert await statuses() == ("QUEUED", "QUEUED")
            first_etag = (await client.get(f"/v2/engagements/{good}")).headers["etag"]
            sandbox.clock.advance(0.49)
            assert await statuses() == ("QUEUED", "QUEUED")
            sandbox.clock.advance(0.02)
            assert await statuses() == ("PROCESSING", "PROCESSING")
            sandbox.clock.advance(0.5)
            assert await statuses() == ("COMPLETED", "FAILED")
            last = await client.get(f"/v2/engagements/{good}")
            assert last.headers["etag"] != first_etag
            assert last.json()["updated_at"] > last.json()["created_at"]

    asyncio.run(scenario())


def test_expand_only_when_asked(sandbox_client: httpx.Client) -> None:
    created = create(sandbox_client, transcript_text="Hello there").json()
    path = f"/v2/engagements/{created['id']}"
    assert not EXPAND_KEYS & sandbox_client.get(path).json().keys()
    some = sandbox_client.get(path, params={"expand": "transcript,media_url"}).json()
    assert EXPAND_KEYS & some.keys() == {"transcript", "media_url"}
    assert some["transcript"] == "Hello there"
    assert some["media_url"] == "https://media.example.com/calls/1.mp3"
    everything = sandbox_client.get(path, params={"expand": ",".join(EXPAND_KEYS)}).json()
    assert everything.keys() >= EXPAND_KEYS
    assert everything["contacts"] == []
    assert everything["owner"] is None


def test_unknown_expand_answers_400(sandbox_client: httpx.Client) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}"
    body = problem(sandbox_client.get(path, params={"expand": "contacts,secrets"}), 400)
    assert "secrets" in body["detail"]


def test_api_prefix_works_too(sandbox_client: httpx.Client) -> None:
    created = sandbox_client.post("/api/v2/engagements", json=engagement_body())
    assert created.status_code == 201
    assert sandbox_client.get(f"/api/v2/engagements/{created.json()['id']}").status_code == 200


# -- list -------------------------------------------------------------------------------


def test_list_pages_through_everything(sandbox_client: httpx.Client) -> None:
    ids = [create(sandbox_client).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = sandbox_client.get("/v2/engagements", params=params).json()
        pages += 1
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == ids
    assert pages == 3


def test_list_filters_by_type(sandbox_client: httpx.Client) -> None:
    create(sandbox_client)
    meeting = create(sandbox_client, type="MEETING").json()["id"]
    page = sandbox_client.get("/v2/engagements", params={"type": "MEETING"}).json()
    assert [item["id"] for item in page["data"]] == [meeting]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "!"}])
def test_list_bad_paging_answers_400(sandbox_client: httpx.Client, params: dict[str, Any]) -> None:
    problem(sandbox_client.get("/v2/engagements", params=params), 400)


# -- replace contacts -------------------------------------------------------------------


def test_replace_contacts_sets_and_clears(sandbox_client: httpx.Client) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}/contacts"
    response = sandbox_client.put(path, json={"contact_ids": ["cnt_ann", "cnt_bob"]})
    assert response.status_code == 200
    assert response.json()["contacts"] == [{"id": "cnt_ann"}, {"id": "cnt_bob"}]
    cleared = sandbox_client.put(path, json={"contact_ids": []})
    assert cleared.json()["contacts"] == []


def test_replace_contacts_names_unknown_ids(sandbox_client: httpx.Client) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}/contacts"
    response = sandbox_client.put(
        path, json={"contact_ids": ["cnt_ann", "cnt_unknown1", "cnt_unknown2"]}
    )
    body = problem(response, 422)
    assert "cnt_unknown1" in body["errors"][0]["message"]
    assert "cnt_unknown2" in body["errors"][0]["message"]


def test_admin_can_add_contacts(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}/contacts"
    sandbox.add_contacts("cnt_unknownButAdded")
    response = sandbox_client.put(path, json={"contact_ids": ["cnt_unknownButAdded"]})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "contact_ids"),
        ({"contact_ids": "cnt_ann"}, "contact_ids"),
        ({"contact_ids": ["ann"]}, "contact_ids[0]"),
        ({"contact_ids": [5]}, "contact_ids[0]"),
    ],
)
def test_replace_contacts_rules(
    sandbox_client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    path = f"/v2/engagements/{create(sandbox_client).json()['id']}/contacts"
    assert field in {f for f, _ in error_fields(sandbox_client.put(path, json=body))}


def test_replace_contacts_of_unknown_engagement_answers_404(sandbox_client: httpx.Client) -> None:
    response = sandbox_client.put("/v2/engagements/ngmt_nope/contacts", json={"contact_ids": []})
    problem(response, 404)


# -- every answer carries X-Api-Version -------------------------------------------------


def test_every_answer_has_api_version(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    created = create(sandbox_client)
    path = f"/v2/engagements/{created.json()['id']}"
    etag = sandbox_client.get(path).headers["etag"]
    responses = [
        created,
        sandbox_client.post("/v2/engagements", json={}),
        sandbox_client.post("/v2/engagements", content=b"nope"),
        sandbox_client.get(path),
        sandbox_client.get(path, headers={"If-None-Match": etag}),
        sandbox_client.get("/v2/engagements/ngmt_missing"),
        sandbox_client.get("/v2/nothing-here"),
        sandbox_client.delete("/v2/engagements"),
        sandbox_client.get("/v2/engagements", headers={"Authorization": "Bearer wrong"}),
        sandbox_client.get("/_sandbox/stats"),
        sandbox_client.post("/_sandbox/faults", json={"fail_rate": 5}),
    ]
    for response in responses:
        assert response.headers.get("x-api-version") == "v2", (response.status_code, response.url)
        assert re.match(r"^req_[0-9a-f]+$", response.headers["x-request-id"])
    statuses = {r.status_code for r in responses}
    assert {200, 201, 304, 400, 401, 404, 405, 422} <= statuses


def test_stats_count_requests_by_endpoint_and_status(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    engagement_id = create(sandbox_client).json()["id"]
    sandbox_client.post("/v2/engagements", json={})
    sandbox_client.get(f"/v2/engagements/{engagement_id}")
    sandbox_client.get("/api/v2/engagements/ngmt_missing")
    sandbox_client.put(f"/v2/engagements/{engagement_id}/contacts", json={"contact_ids": []})
    requests = sandbox.stats()["requests"]
    assert requests["POST /v2/engagements"] == {"201": 1, "422": 1}
    assert requests["GET /v2/engagements/{engagement_id}"] == {"200": 1, "404": 1}
    assert requests["PUT /v2/engagements/{engagement_id}/contacts"] == {"200": 1}
    assert not any(name.startswith(("GET /_sandbox", "POST /_sandbox")) for name in requests)


def test_admin_engagements_lists_ids_and_external_ids(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    made = {create(sandbox_client).json()["external_id"] for _ in range(3)}
    stored = sandbox.engagements()
    assert {e["external_id"] for e in stored} == made
    assert all(contract.ENGAGEMENT_ID_PATTERN.match(e["id"]) for e in stored)
