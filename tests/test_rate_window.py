"""X-RateLimit-* pacing: the target reports the window, the shared pacer spreads what remains.

The pacer's part runs in the real sender on simulated time (``tests/scripted_server.py``);
the targets' part against a mock transport (the sandbox's AskElephant face sends no
X-RateLimit headers) and the sandbox's DevRev face with a rate limit set.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from importer.errors import RateLimited
from importer.send.pacing import Answer, Pacer, WindowPacer
from importer.targets.askelephant import AskElephantTarget
from importer.targets.http import RateHint, rate_hint
from tests.conftest import Sandbox
from tests.devrev_support import import_devrev, per_ref, write_devrev_manifest
from tests.scripted_server import Script, send_through


def hinted(remaining: int, reset: float, limit: int | None = 100) -> WindowPacer:
    window = WindowPacer()
    window.hinted(100.0, RateHint(remaining, reset, limit))
    return window


def test_far_from_the_limit_nothing_waits() -> None:
    window = hinted(remaining=90, reset=300)
    assert [window.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_near_the_limit_requests_are_spread_over_the_time_left() -> None:
    window = hinted(remaining=4, reset=40)
    assert [window.reserve(100.0) for _ in range(5)] == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_an_exhausted_window_waits_for_the_reset_and_then_nothing_is_known() -> None:
    window = hinted(remaining=0, reset=25)
    assert window.reserve(100.0) == 25.0
    assert window.reserve(125.0) == 0.0  # reset: paced again by the next answer's hint


def test_no_hint_means_no_wait() -> None:
    assert WindowPacer().reserve(0.0) == 0.0


def test_the_headers_make_a_hint_with_seconds_or_a_unix_time() -> None:
    headers = {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000045"}
    assert rate_hint(headers, 1_700_000_000.0) == RateHint(3, 45.0, None)
    assert rate_hint({"x-ratelimit-remaining": "3"}, 0.0) is None
    assert rate_hint({"x-ratelimit-remaining": "nan", "x-ratelimit-reset": "5"}, 0.0) is None


def test_the_pacer_waits_for_the_later_of_its_pace_and_the_window() -> None:
    pacer = Pacer()
    pacer.hinted(0.0, RateHint(remaining=2, reset_seconds=10.0))
    assert [pacer.reserve(0.0) for _ in range(3)] == [0.0, 5.0, 10.0]


@pytest.mark.parametrize(
    "seed",
    [
        1,
        pytest.param(2, marks=pytest.mark.chaos_full),
        pytest.param(3, marks=pytest.mark.chaos_full),
    ],
)
def test_a_counted_window_is_met_without_refusals_and_near_its_rate(seed: int) -> None:
    # 20 requests per second, counted in every answer: spread before it is exhausted.
    script = Script(window=(20, 1.0), latency=0.05)
    paced = send_through(script, 300, concurrency=8, seed=seed)
    assert paced.answers()[Answer.REFUSED] == 0
    assert len(paced.done_at) == 300 and paced.end < 300 / 20 * 1.5
    blind = send_through(Script(window=(20, 1.0), latency=0.05, hints=False), 300, concurrency=8)
    assert blind.answers()[Answer.REFUSED] > 30  # without the hints: refused, then slowed


def test_any_target_reports_the_window_its_server_sends() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30", "Retry-After": "30"}
        return httpx.Response(429, json={"detail": "slow down"}, headers=headers)

    target = AskElephantTarget(
        "https://api.example.com", "k", transport=httpx.MockTransport(answer)
    )
    hints: list[RateHint] = []
    target.on_rate_hint = hints.append

    async def get() -> None:
        try:
            await target.get("eng_1")
        finally:
            await target.aclose()

    with pytest.raises(RateLimited):
        asyncio.run(get())
    assert hints == [RateHint(0, 30.0, None)]  # a refusal's window is reported too


def test_a_devrev_import_under_a_rate_limit_slows_before_the_window_is_empty(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(rate_limit=20)
    try:
        manifest = write_devrev_manifest(tmp_path / "m.csv", 120)
        summary = import_devrev(sandbox, manifest, tmp_path / "l.db")
    finally:
        sandbox.set_faults(rate_limit=None)
    assert summary.exit_code == 0 and set(per_ref(sandbox).values()) == {1}
    assert len(per_ref(sandbox)) == 120
    statuses: dict[str, int] = {}
    for by_status in sandbox.stats()["requests"].values():
        for status, count in by_status.items():
            statuses[status] = statuses.get(status, 0) + count
    assert statuses.get("429", 0) <= 2, statuses
