"""How a run starts: gently and ramping on a first run, at the remembered pace after.

The rules on a fake clock, the real sender against ``tests/scripted_server.py`` (simulated
time), and the ledger keeping the pace per server and key fingerprint (a real run against
the sandbox).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from importer.send.pacing import Answer, KnownPace, Pacer
from importer.settings import PacingSettings
from tests.conftest import Sandbox
from tests.factories import row, run_args, run_cli, write_manifest
from tests.scripted_server import Script, send_through

SLOW_START = PacingSettings(slow_start=True)


def departures(pacer: Pacer, count: int, now: float = 0.0) -> list[float]:
    """When ``count`` requests reserved at ``now`` leave."""
    times = []
    for _ in range(count):
        times.append(now + pacer.reserve(now))
        pacer.sent(times[-1])
    return times


def test_a_first_run_sends_its_first_burst_then_paces_and_doubles_every_second() -> None:
    pacer = Pacer(SLOW_START)
    settings = pacer.settings

    times = departures(pacer, settings.start_burst + 40)

    assert times[: settings.start_burst] == [0.0] * settings.start_burst
    paced = times[settings.start_burst :]
    assert paced[1] - paced[0] == pytest.approx(1 / settings.start_rate, rel=0.01)
    assert pacer.rate.rate(1.0) == pytest.approx(2 * settings.start_rate)
    assert pacer.rate.rate(2.0) == pytest.approx(4 * settings.start_rate)


def test_the_ramp_ends_where_no_limit_can_be_told_from_none() -> None:
    pacer = Pacer(SLOW_START)
    pacer.reserve(0.0)

    assert pacer.rate.rate(10.0) is None  # 10/s doubled ten times is past the ceiling


def test_a_rate_cap_is_the_users_word_no_ramp_below_it() -> None:
    pacer = Pacer(PacingSettings(slow_start=True, rate_cap=40.0))

    assert departures(pacer, 3) == pytest.approx([0.0, 0.025, 0.05])


def test_a_remembered_limit_is_where_the_next_run_starts() -> None:
    pacer = Pacer(PacingSettings(slow_start=True, known_pace=KnownPace(38.0, limited=True)))

    assert departures(pacer, 3, now=5.0) == pytest.approx([5.0, 5.0 + 1 / 38, 5.0 + 2 / 38])
    assert pacer.pace_to_remember() == KnownPace(38.0, limited=True)  # nothing refused


def test_a_remembered_pace_without_a_limit_starts_the_ramp_there() -> None:
    pacer = Pacer(PacingSettings(slow_start=True, known_pace=KnownPace(200.0, limited=False)))
    pacer.reserve(0.0)

    assert pacer.rate.rate(0.0) == pytest.approx(200.0)


def test_what_a_run_remembers_a_learned_limit_or_the_pace_it_reached() -> None:
    free = Pacer(SLOW_START)
    for n in range(50):
        free.sent(n * 0.01)
    assert free.pace_to_remember() == KnownPace(pytest.approx(100, rel=0.1), limited=False)

    limited = send_through(Script(latency=0.2, limit=40), 300, concurrency=32, slow_start=True)
    remembered = limited.pacer.pace_to_remember()
    assert remembered.limited and remembered.rate == pytest.approx(40, rel=0.15)


def refused_share(result: object, end: float = float("inf")) -> float:
    answers = result.answers(end=end)  # type: ignore[attr-defined]
    return answers[Answer.REFUSED] / sum(answers.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_first_run_against_an_untold_limit_refuses_less_than_a_full_speed_start(
    seed: int,
) -> None:
    script = Script(latency=0.2, limit=40)
    full_speed = send_through(script, 1000, concurrency=32, seed=seed)
    gentle = send_through(script, 1000, concurrency=32, slow_start=True, seed=seed)

    print(f"refused: {refused_share(full_speed):.1%} at full speed, {refused_share(gentle):.1%}")
    assert refused_share(gentle, end=2.0) == 0.0  # the first seconds refuse nothing
    assert refused_share(gentle) < refused_share(full_speed)
    assert len(gentle.done_at) == 1000
    assert gentle.pacer.pace_to_remember().rate == pytest.approx(40, rel=0.15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_that_starts_at_the_remembered_limit_stays_within_the_budget(seed: int) -> None:
    script = Script(latency=0.2, limit=40)
    known = KnownPace(40.0, limited=True)

    result = send_through(script, 1000, concurrency=32, slow_start=True, known=known, seed=seed)

    assert refused_share(result) <= 0.03
    assert refused_share(result, end=1.0) == 0.0
    assert len(result.done_at) / result.end >= 0.97 * 40


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_stray_429s_do_not_end_the_ramp_as_a_limit(seed: int) -> None:
    script = Script(latency=0.2, stray_refusals=0.05, failures=0.10)

    result = send_through(script, 3000, concurrency=32, slow_start=True, seed=seed)

    assert result.pacer.rate.accepted_at_limit == []
    assert result.pacer.rate.rate(result.end) is None
    assert len(result.done_at) == 3000


def test_the_ledger_keeps_the_pace_by_server_and_key_fingerprint_never_the_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(30)])
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    with sqlite3.connect(ledger) as db:
        paces = db.execute("SELECT server, rate, limited FROM server_paces").fetchall()
        dump = "\n".join(db.iterdump())
    assert len(paces) == 1
    server, rate, limited = paces[0]
    assert server.startswith(sandbox.base_url + " key:") and rate > 0 and limited == 0
    assert sandbox.api_key not in dump


def test_a_slot_reserved_before_the_pace_dropped_is_asked_for_again() -> None:
    pacer = Pacer(SLOW_START)
    departures(pacer, pacer.settings.start_burst + 5)
    assert not pacer.slowed_since(0.0)

    for n in range(8):  # half of what leaves is refused: an emptied token bucket
        sent_at = 2.0 + n * 0.01
        pacer.sent(sent_at)
        pacer.answered(sent_at, sent_at, Answer.REFUSED if n % 2 else Answer.ACCEPTED, probe=False)

    assert pacer.rate.hold_from is not None
    assert pacer.slowed_since(1.9)  # reserved at the ramp's pace: it asks again
    assert not pacer.slowed_since(2.5)
