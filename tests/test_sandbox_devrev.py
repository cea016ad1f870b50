"""The sandbox's DevRev face, and the DevRev target talking to it over real HTTP.

The sandbox's create is deliberately not idempotent: these tests show that the target's
lookups, not the server, keep one engagement per external_ref.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from importer.errors import FatalError, RateLimited
from importer.targets.devrev import DevRevTarget
from importer.targets.http import RateHint
from tests.conftest import DEVREV_CRM_ACCOUNT, SANDBOX_KEY, Sandbox, SandboxProcess
from tests.devrev_support import (
    ACCOUNT_ID,
    MEMBER,
    add_account,
    devrev_engagements,
    write_devrev_manifest,
)
from tests.factories import run_args, run_cli


def devrev_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Discovery call",
        "parent": "ACC-1",
        "scheduled_date": "2024-05-01T14:30:00+00:00",
        "members": [MEMBER],
        "engagement_type": "call",
        "external_ref": f"tests:{uuid.uuid4().hex}",
        "external_url": "https://media.example.com/calls/1.mp3",
    }
    body.update(changes)
    return body


def target_for(sandbox: Sandbox, **options: Any) -> DevRevTarget:
    return DevRevTarget(sandbox.base_url, SANDBOX_KEY, **options)


def run(coroutine_factory: Callable[[DevRevTarget], Any], target: DevRevTarget) -> Any:
    async def go() -> Any:
        try:
            return await coroutine_factory(target)
        finally:
            await target.aclose()

    return asyncio.run(go())


# -- the sandbox ----------------------------------------------------------------------------


def test_create_is_not_idempotent(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    body = devrev_body()
    first = sandbox_client.post("/engagements.create", json=body)
    second = sandbox_client.post("/engagements.create", json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["engagement"]["id"] != second.json()["engagement"]["id"]
    assert [e["external_ref"] for e in devrev_engagements(sandbox)] == [body["external_ref"]] * 2


def test_list_filters_by_external_ref_with_post_and_get(sandbox_client: httpx.Client) -> None:
    wanted, other = devrev_body(), devrev_body()
    for body in (wanted, other):
        sandbox_client.post("/engagements.create", json=body).raise_for_status()
    posted = sandbox_client.post(
        "/engagements.list", json={"external_ref": [wanted["external_ref"]]}
    )
    got = sandbox_client.get("/engagements.list", params={"external_ref": wanted["external_ref"]})
    for answer in (posted, got):
        assert answer.status_code == 200
        assert [e["external_ref"] for e in answer.json()["engagements"]] == [wanted["external_ref"]]
        assert answer.json()["next_cursor"] is None


def test_list_pages_with_cursor_and_mode(sandbox_client: httpx.Client) -> None:
    refs = [devrev_body()["external_ref"] for _ in range(5)]
    for ref in refs:
        sandbox_client.post("/engagements.create", json=devrev_body(external_ref=ref))
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"external_ref": refs, "limit": 2}
        if cursor:
            query["cursor"] = cursor
        page = sandbox_client.post("/engagements.list", json=query).json()
        seen += [e["external_ref"] for e in page["engagements"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == refs
    newest = sandbox_client.post(
        "/engagements.list", json={"external_ref": refs, "limit": 2, "mode": "before"}
    ).json()
    assert [e["external_ref"] for e in newest["engagements"]] == refs[:-3:-1]


def test_errors_have_devrev_shape(sandbox_client: httpx.Client) -> None:
    answer = sandbox_client.post("/engagements.create", json=devrev_body(members="DEVU-1"))
    assert answer.status_code == 400
    assert answer.json() == {
        "type": "bad_request",
        "message": "members must be a list of at most 50 user ids",
    }
    bad_cursor = sandbox_client.post("/engagements.list", json={"cursor": "nope"})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["type"] == "bad_request"
    anonymous = httpx.post(str(sandbox_client.base_url) + "/engagements.list", json={})
    assert anonymous.status_code == 401 and anonymous.json()["type"] == "unauthenticated"


# -- the published create contract -----------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "parent"])
def test_title_and_parent_are_required(sandbox_client: httpx.Client, field: str) -> None:
    body = devrev_body()
    del body[field]
    answer = sandbox_client.post("/engagements.create", json=body)
    assert answer.status_code == 400
    assert answer.json() == {
        "type": "missing_required_field",
        "message": f"{field} is required",
        "field_name": field,
    }


def test_members_and_scheduled_date_are_optional(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    body = devrev_body()
    del body["members"], body["scheduled_date"]
    assert sandbox_client.post("/engagements.create", json=body).status_code == 201
    fifty = devrev_body(members=[f"DEVU-{n}" for n in range(50)])
    assert sandbox_client.post("/engagements.create", json=fifty).status_code == 201
    many = devrev_body(members=[f"DEVU-{n}" for n in range(51)])
    assert sandbox_client.post("/engagements.create", json=many).status_code == 400


def test_no_length_limit_on_title_or_description(sandbox_client: httpx.Client) -> None:
    body = devrev_body(title="t" * 5000, description="d" * 100_000)
    answer = sandbox_client.post("/engagements.create", json=body)
    assert answer.status_code == 201 and answer.json()["engagement"]["title"] == "t" * 5000


def test_engagement_type_takes_the_published_values_only(sandbox_client: httpx.Client) -> None:
    for kind in ("call", "default", "email", "linked_in", "offline"):
        answer = sandbox_client.post("/engagements.create", json=devrev_body(engagement_type=kind))
        assert answer.status_code == 201, kind
    refused = sandbox_client.post("/engagements.create", json=devrev_body(engagement_type="video"))
    assert refused.status_code == 400
    assert refused.json()["type"] == "invalid_enum_value"
    assert refused.json()["allowed_values"] == ["call", "default", "email", "linked_in", "offline"]


@pytest.mark.parametrize(
    "parent",
    ["ACC-1", ACCOUNT_ID, "OPP-9", "don:core:dvrv-us-1:devo/sandbox:opportunity/9"],
)
def test_parent_is_an_account_or_opportunity_in_either_form(
    sandbox_client: httpx.Client, parent: str
) -> None:
    answer = sandbox_client.post("/engagements.create", json=devrev_body(parent=parent))
    assert answer.status_code == 201
    assert answer.json()["engagement"]["parent"] == {"id": parent}


@pytest.mark.parametrize(
    ("parent", "said"),
    [
        (DEVREV_CRM_ACCOUNT, "must be an account or an opportunity"),
        ("don:core:dvrv-us-1:devo/sandbox:engagement/1", "must be an account or an opportunity"),
        ("ACC-99", "not an account this org holds"),
    ],
)
def test_a_parent_that_is_no_account_is_refused(
    sandbox_client: httpx.Client, parent: str, said: str
) -> None:
    answer = sandbox_client.post("/engagements.create", json=devrev_body(parent=parent))
    assert answer.status_code == 400 and said in answer.json()["message"]
    assert answer.json()["field_name"] == "parent"


# -- accounts ---------------------------------------------------------------------------------


def test_accounts_list_filters_by_external_refs(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    added = add_account(sandbox, "001B", "hubspot-77")
    posted = sandbox_client.post("/accounts.list", json={"external_refs": ["hubspot-77", "x"]})
    got = sandbox_client.get("/accounts.list", params={"external_refs": DEVREV_CRM_ACCOUNT})
    assert posted.json() == {"accounts": [added]}
    assert added["display_id"] == "ACC-2" and added["external_refs"] == ["001B", "hubspot-77"]
    (seeded,) = got.json()["accounts"]
    assert seeded["id"] == ACCOUNT_ID and seeded["external_refs"] == [DEVREV_CRM_ACCOUNT]


def test_accounts_list_pages_with_cursor(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    for n in range(5):
        add_account(sandbox, f"crm-{n}")
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = sandbox_client.post("/accounts.list", json=query).json()
        seen += [a["display_id"] for a in page["accounts"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == [f"ACC-{n}" for n in range(1, 7)]


def test_a_reset_keeps_the_seeded_accounts_only(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    add_account(sandbox, "001B")
    sandbox.reset()
    accounts = sandbox_client.post("/accounts.list", json={}).json()["accounts"]
    assert [a["external_refs"] for a in accounts] == [[DEVREV_CRM_ACCOUNT]]


def test_a_429_body_carries_retry_after(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(rate_limit=1)
    answers = [sandbox_client.post("/accounts.list", json={}) for _ in range(2)]
    refused = answers[-1]
    assert refused.status_code == 429 and refused.json()["type"] == "too_many_requests"
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"]) >= 1


def test_rate_limit_headers_and_429(sandbox: SandboxProcess, sandbox_client: httpx.Client) -> None:
    sandbox.set_faults(rate_limit=2)
    answers = [sandbox_client.post("/engagements.list", json={}) for _ in range(3)]
    assert answers[0].headers["X-RateLimit-Limit"] == "2"
    assert answers[0].headers["X-RateLimit-Remaining"] == "1"
    assert int(answers[0].headers["X-RateLimit-Reset"]) >= 1
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["type"] == "too_many_requests"


def test_outage_answers_503(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.set_faults(outage_start=0, outage_seconds=60)
    answer = sandbox_client.post("/engagements.create", json=devrev_body())
    assert answer.status_code == 503 and answer.json()["type"] == "service_unavailable"


def test_reset_forgets_devrev_engagements(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox_client.post("/engagements.create", json=devrev_body()).raise_for_status()
    sandbox.reset()
    assert devrev_engagements(sandbox) == []


# -- the target against it ------------------------------------------------------------------


def test_lookup_follows_next_cursor_over_several_pages(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    refs = [devrev_body()["external_ref"] for _ in range(7)]
    for ref in refs:
        sandbox_client.post("/engagements.create", json=devrev_body(external_ref=ref))
    missing = "tests:not-there"
    target = target_for(sandbox, refs_per_lookup=3, page_limit=2)
    found = run(lambda t: t.lookup([*refs, missing]), target)
    assert [len(found[ref]) for ref in refs] == [1] * 7 and found[missing] == []
    # 3 calls of refs (3, 3, 2): pages of 2 -> 2 + 2 + 1 requests (+1 for the missing ref's page)
    lists = sandbox.stats()["requests"]["POST /engagements.list"]["200"]
    assert lists >= 5


def test_a_429_is_rate_limited_and_the_window_only_reported(sandbox: SandboxProcess) -> None:
    # The target does not pace: it reports each answer's X-RateLimit-* to the shared pacer.
    sandbox.set_faults(rate_limit=1)

    async def burst(target: DevRevTarget) -> None:
        await target.lookup(["tests:a"])
        await target.lookup(["tests:b"])

    hints: list[RateHint] = []
    target = target_for(sandbox)
    target.on_rate_hint = hints.append
    with pytest.raises(RateLimited) as caught:
        run(burst, target)
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert hints[0].remaining == 0 and hints[0].limit == 1
    assert 0.9 < hints[0].reset_seconds <= 1.0  # the empty window's reset, for the pacer


def test_find_references_asks_accounts_list_in_batches_and_pages(
    sandbox: SandboxProcess,
) -> None:
    refs = [f"crm-{n}" for n in range(7)]
    for ref in refs:
        add_account(sandbox, ref)
    add_account(sandbox, "crm-3")  # a second account synced from the same CRM id
    target = target_for(sandbox, refs_per_lookup=3, page_limit=2)
    found = run(lambda t: t.find_references([*refs, "crm-unknown"]), target)
    assert found["crm-0"] == ["don:core:dvrv-us-1:devo/sandbox:account/2"]
    assert len(found["crm-3"]) == 2 and found["crm-unknown"] == []
    assert all(len(found[ref]) == 1 for ref in refs if ref != "crm-3")
    # batches of 3 values (3, 3, 2) holding 3, 4 and 1 accounts: pages of 2 -> 2 + 2 + 1
    assert sandbox.stats()["requests"]["POST /accounts.list"] == {"200": 5}


def test_a_revoked_key_stops_the_run(sandbox: SandboxProcess) -> None:
    with pytest.raises(FatalError, match="DEVREV_API_KEY"):
        run(lambda t: t.lookup(["tests:a"]), DevRevTarget(sandbox.base_url, "wrong-key"))


def test_the_access_check_passes_a_good_key_and_stops_a_refused_one(
    sandbox: Sandbox,
) -> None:
    run(lambda t: t.check_access(), target_for(sandbox))  # 404 for the check id: fine
    with pytest.raises(FatalError, match="HTTP 401"):
        run(lambda t: t.check_access(), DevRevTarget(sandbox.base_url, "wrong-key"))


def test_only_devrevs_own_host_is_production(sandbox: Sandbox) -> None:
    assert DevRevTarget("https://api.devrev.ai", "k").is_production
    assert not target_for(sandbox).is_production


def test_a_run_with_a_refused_devrev_key_stops_before_reading(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 3)
    args = run_args(manifest, tmp_path / "l.db", sandbox, "--target", "devrev")
    result = run_cli(args, DEVREV_API_KEY="wrong-key", DEVREV_BASE_URL="")
    assert result.exit_code == 3 and "DEVREV_API_KEY" in result.output
    assert sandbox.stats()["requests"].get("POST /engagements.list") is None
