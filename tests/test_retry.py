"""The retry policy, with a fake sleep that records every wait instead of waiting."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import (
    FatalError,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
)
from importer.send.retry import backoff_seconds, retry_policy, wait_seconds
from importer.settings import RetrySettings


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Flaky:
    """Raises the given errors one per call, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(
    function: Flaky,
    retry: RetrySettings,
    sleep: FakeSleep,
    announced: list[tuple[type, float, int]] | None = None,
) -> str:
    def before_sleep(error: BaseException, wait: float, attempt: int) -> None:
        if announced is not None:
            announced.append((type(error), wait, attempt))

    async def main() -> str:
        policy = retry_policy(retry, sleep=sleep, rng=random.Random(1), before_sleep=before_sleep)
        async for attempt in policy:
            with attempt:
                return await function()
        raise AssertionError("unreachable")

    return asyncio.run(main())


@pytest.mark.parametrize("failures", [0, 1, 3, 5])
def test_transient_failures_then_success(failures: int) -> None:
    function = Flaky(*(ServerUnavailable("503") for _ in range(failures)))
    sleep = FakeSleep()
    announced: list[tuple[type, float, int]] = []
    assert run(function, RetrySettings(max_attempts=6), sleep, announced) == "ok"
    assert function.calls == failures + 1
    assert len(sleep.waits) == failures
    assert [a[2] for a in announced] == list(range(1, failures + 1))
    assert [a[1] for a in announced] == sleep.waits


@pytest.mark.parametrize(
    "error", [PermanentError("422"), FatalError("401"), ValueError("a bug"), RuntimeError("x")]
)
def test_non_transient_errors_are_never_retried(error: Exception) -> None:
    function, sleep = Flaky(error), FakeSleep()
    with pytest.raises(type(error)):
        run(function, RetrySettings(max_attempts=6), sleep)
    assert function.calls == 1
    assert sleep.waits == []


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
def test_stops_at_max_attempts_and_reraises_the_last_error(max_attempts: int) -> None:
    errors = [TransientError(f"try {n}") for n in range(1, 10)]
    function, sleep = Flaky(*errors), FakeSleep()
    with pytest.raises(TransientError, match=f"try {max_attempts}$"):
        run(function, RetrySettings(max_attempts=max_attempts), sleep)
    assert function.calls == max_attempts
    assert len(sleep.waits) == max_attempts - 1


def test_rate_limited_waits_at_least_retry_after() -> None:
    function = Flaky(RateLimited("429", retry_after=7.0), RateLimited("429", retry_after=3.0))
    sleep = FakeSleep()
    assert run(function, RetrySettings(backoff_base=0.01), sleep) == "ok"
    assert len(sleep.waits) == 2
    assert sleep.waits[0] >= 7.0 and sleep.waits[1] >= 3.0


@pytest.mark.parametrize("retry_after", [0.0, None])
def test_retry_after_zero_still_waits_the_minimum(retry_after: float | None) -> None:
    retry = RetrySettings(backoff_base=0.0001, min_rate_limit_wait=0.75)
    function, sleep = Flaky(RateLimited("429", retry_after=retry_after)), FakeSleep()
    assert run(function, retry, sleep) == "ok"
    assert sleep.waits and sleep.waits[0] >= 0.75


def test_retry_after_above_the_cap_is_not_retried() -> None:
    retry = RetrySettings(retry_after_cap=60.0)
    function, sleep = Flaky(RateLimited("429", retry_after=61.0)), FakeSleep()
    with pytest.raises(RateLimited):
        run(function, retry, sleep)
    assert function.calls == 1 and sleep.waits == []


def test_retry_after_at_the_cap_is_retried() -> None:
    retry = RetrySettings(retry_after_cap=60.0)
    function, sleep = Flaky(RateLimited("429", retry_after=60.0)), FakeSleep()
    assert run(function, retry, sleep) == "ok"
    assert sleep.waits[0] >= 60.0


@settings(max_examples=200, deadline=None)
@given(
    retry_number=st.integers(1, 40),
    base=st.floats(0.001, 10),
    cap=st.floats(0.001, 100),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_full_jitter_within_the_ceiling(
    retry_number: int, base: float, cap: float, seed: int
) -> None:
    retry = RetrySettings(backoff_base=base, backoff_cap=cap)
    ceiling = min(cap, base * 2 ** (retry_number - 1))
    wait = backoff_seconds(retry_number, retry, random.Random(seed))
    assert 0 <= wait <= ceiling
    plain = wait_seconds(ServerUnavailable("x"), retry_number, retry, random.Random(seed))
    assert plain == wait


def test_backoff_uses_the_whole_range() -> None:
    rng = random.Random(3)
    waits = [backoff_seconds(3, RetrySettings(backoff_base=1.0), rng) for _ in range(500)]
    assert min(waits) < 0.5 and max(waits) > 3.5 and max(waits) <= 4.0
