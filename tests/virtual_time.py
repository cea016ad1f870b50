"""An asyncio event loop on simulated time: every sleep and timeout ends at once, in order.

When nothing is ready to run, the loop jumps its clock to the next timer instead of waiting
for it, so a sender that paces, backs off and waits out a ``Retry-After`` runs its whole
story in milliseconds, and ``loop.time()`` is the clock the test hands it.

    result = run_virtual(main())   # main() awaits asyncio.sleep(30) without waiting 30 s
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _InstantSelector(selectors.DefaultSelector):
    """Never blocks: a wait for a timer moves the loop's clock to it instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None:
            self.now += timeout
        elif not ready:
            raise RuntimeError("nothing to run and no timer set: the simulation would hang")
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` moves only when every task waits for a timer."""

    def __init__(self) -> None:
        self._instant = _InstantSelector()
        super().__init__(self._instant)

    def time(self) -> float:
        return self._instant.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
