"""CircuitBreaker and RateLimiter on a fake clock: no real waiting."""

from __future__ import annotations

import asyncio

import pytest

from importer.breaker import CircuitBreaker, RateLimiter


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make_breaker(time: FakeTime, base: float = 1.0, cap: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(base, cap, clock=time.clock, sleep=time.sleep)


def test_a_closed_breaker_lets_everyone_through() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time)
        assert [await breaker.acquire() for _ in range(3)] == [False, False, False]
        assert time.sleeps == [] and not breaker.is_failing

    asyncio.run(main())


def test_after_a_failure_one_probe_goes_and_the_rest_wait_for_it() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time, base=2.0)
        breaker.server_failed(was_probe=False)
        assert breaker.is_failing and breaker.open_until == 2.0
        tasks = [asyncio.create_task(breaker.acquire()) for _ in range(4)]
        for _ in range(10):
            await asyncio.sleep(0)
        assert time.now >= 2.0  # everyone waited for the breaker to half-open
        done = [t for t in tasks if t.done()]
        assert [t.result() for t in done] == [True]  # exactly one probe
        breaker.server_answered()  # the probe succeeded: closed
        results = await asyncio.gather(*tasks)
        assert sorted(results) == [False, False, False, True]
        assert not breaker.is_failing

    asyncio.run(main())


def test_a_failed_probe_reopens_for_longer_and_a_new_probe_goes() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time, base=1.0)
        breaker.server_failed(was_probe=False)
        assert await breaker.acquire() is True
        waiter = asyncio.create_task(breaker.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()
        failed_at = time.now
        breaker.server_failed(was_probe=True)
        assert breaker.failures == 2
        assert breaker.open_until == pytest.approx(failed_at + 2.0)
        assert await waiter is True  # the waiter becomes the next probe, after the delay
        assert time.now >= failed_at + 2.0

    asyncio.run(main())


def test_failures_while_open_do_not_stack() -> None:
    async def main() -> None:
        breaker = make_breaker(FakeTime(), base=1.0)
        breaker.server_failed(was_probe=False)
        breaker.server_failed(was_probe=False)
        breaker.server_failed(was_probe=False)
        assert breaker.failures == 1 and breaker.open_until == 1.0

    asyncio.run(main())


def test_backoff_is_capped() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time, base=1.0, cap=5.0)
        for _ in range(10):
            breaker.server_failed(was_probe=True)
        assert breaker.open_until - time.now == 5.0

    asyncio.run(main())


def test_pause_delays_everyone_without_counting_a_failure() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time)
        breaker.pause(5.0)
        assert not breaker.is_failing
        results = await asyncio.gather(*(breaker.acquire() for _ in range(3)))
        assert results == [False, False, False]  # no probe: it was not a failure
        assert time.now >= 5.0
        assert time.sleeps and time.sleeps[0] == 5.0

    asyncio.run(main())


def test_a_shorter_pause_does_not_shorten_an_open_breaker() -> None:
    async def main() -> None:
        time = FakeTime()
        breaker = make_breaker(time, base=8.0)
        breaker.server_failed(was_probe=False)
        breaker.pause(1.0)
        assert breaker.open_until == 8.0

    asyncio.run(main())


def test_release_of_a_cancelled_probe_lets_another_probe_go() -> None:
    async def main() -> None:
        breaker = make_breaker(FakeTime())
        breaker.server_failed(was_probe=False)
        assert await breaker.acquire() is True
        waiter = asyncio.create_task(breaker.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()
        breaker.release(was_probe=True)
        assert await waiter is True

    asyncio.run(main())


@pytest.mark.parametrize(("rate", "expected"), [(10.0, [0.1, 0.2, 0.3]), (0.5, [2.0, 4.0, 6.0])])
def test_rate_limiter_spaces_requests(rate: float, expected: list[float]) -> None:
    async def main() -> None:
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        limiter = RateLimiter(rate, clock=lambda: 100.0, sleep=sleep)
        for _ in range(4):
            await limiter.acquire()
        assert sleeps == pytest.approx(expected)

    asyncio.run(main())


def test_rate_limiter_does_not_wait_when_requests_are_already_spaced() -> None:
    async def main() -> None:
        time = FakeTime()
        limiter = RateLimiter(2.0, clock=time.clock, sleep=time.sleep)
        for _ in range(3):
            await limiter.acquire()
            time.now += 1.0  # slower than 2/s by ourselves
        assert time.sleeps == []

    asyncio.run(main())


def test_no_rate_means_no_limit() -> None:
    async def main() -> None:
        time = FakeTime()
        limiter = RateLimiter(None, clock=time.clock, sleep=time.sleep)
        for _ in range(5):
            await limiter.acquire()
        assert time.sleeps == []

    asyncio.run(main())


def test_a_429_starts_pacing_at_half_the_rate_just_seen() -> None:
    async def main() -> None:
        time = FakeTime()
        limiter = RateLimiter(None, clock=time.clock, sleep=time.sleep)
        for _ in range(40):  # 40 requests in 2 seconds: 20/s
            await limiter.acquire()
            time.now += 0.05
        limiter.slow_down()
        assert limiter.rate == pytest.approx(10.0)
        time.sleeps.clear()
        await limiter.acquire()
        await limiter.acquire()
        assert time.sleeps == pytest.approx([0.1])

    asyncio.run(main())


def test_a_burst_of_429s_halves_once_per_second_down_to_the_floor() -> None:
    time = FakeTime()
    limiter = RateLimiter(8.0, floor=0.5, clock=time.clock, sleep=time.sleep)
    for _ in range(8):  # the same burst: one halving
        limiter.slow_down()
    assert limiter.rate == 4.0
    for _ in range(10):
        time.now += 1.0
        limiter.slow_down()
    assert limiter.rate == 0.5


def test_successes_raise_the_pace_additively_up_to_the_ceiling() -> None:
    time = FakeTime()
    limiter = RateLimiter(3.0, step=0.5, clock=time.clock, sleep=time.sleep)
    limiter.slow_down()
    assert limiter.rate == 1.5
    limiter.speed_up()
    assert limiter.rate == 2.0
    for _ in range(10):
        limiter.speed_up()
    assert limiter.rate == 3.0  # never above --rate


def test_without_429s_successes_add_no_limit() -> None:
    limiter = RateLimiter(None)
    limiter.speed_up()
    assert limiter.rate is None
