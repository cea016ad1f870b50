"""The one retry policy: which errors are retried, how long to wait, when to give up.

Retryability lives in the exception type (``TransientError`` and its children); this module
turns that into a tenacity policy. Waits are exponential back-off with full jitter, capped,
and never shorter than what the server's ``Retry-After`` asked for.

    policy = retry_policy(RetrySettings(max_attempts=6), sleep=fake_sleep)
    async for attempt in policy:
        with attempt:
            await target.create(payload)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import tenacity

from importer.errors import RateLimited, TransientError
from importer.settings import RetrySettings


def backoff_seconds(retry_number: int, settings: RetrySettings, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(retry_number-1))]."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** max(0, retry_number - 1))
    return rng.uniform(0, ceiling)


def wait_seconds(
    error: BaseException | None, retry_number: int, settings: RetrySettings, rng: random.Random
) -> float:
    """How long to wait before the next attempt after ``error``."""
    wait = backoff_seconds(retry_number, settings, rng)
    if isinstance(error, RateLimited):
        wait = max(wait, error.retry_after or 0.0, settings.min_rate_limit_wait)
    return wait


def is_retryable(error: BaseException, settings: RetrySettings) -> bool:
    """Transient errors are retried, unless the server asked for a wait past the cap."""
    if isinstance(error, RateLimited) and (error.retry_after or 0) > settings.retry_after_cap:
        return False
    return isinstance(error, TransientError)


def retry_policy(
    settings: RetrySettings,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
    before_sleep: Callable[[BaseException, float, int], None] | None = None,
) -> tenacity.AsyncRetrying:
    """Build the policy; tests pass a fake ``sleep`` and count attempts."""
    generator = rng or random.Random()

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return wait_seconds(error, state.attempt_number, settings, generator)

    def announce(state: tenacity.RetryCallState) -> None:
        if before_sleep is not None and state.outcome is not None and state.next_action:
            error = state.outcome.exception()
            if error is not None:
                before_sleep(error, state.next_action.sleep, state.attempt_number)

    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(lambda error: is_retryable(error, settings)),
        stop=tenacity.stop_after_attempt(settings.max_attempts),
        wait=wait,
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
