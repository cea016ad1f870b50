"""A pool of workers over a bounded queue, that stops as a run stops.

Once the stop event is set, work still waiting in the queue is dropped (its rows stay
``pending``) and the workers in the middle of an item get a grace period to finish it. An
unexpected error in a worker stops the whole pool, and is raised again once it has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class WorkerPool(Generic[Item]):
    """``size`` workers calling ``handle`` on each item put, until ``close``."""

    def __init__(
        self,
        handle: Callable[[Item], Awaitable[None]],
        stop: asyncio.Event,
        *,
        size: int,
        grace_seconds: float,
    ) -> None:
        self.handle, self.stop, self.size, self.grace_seconds = handle, stop, size, grace_seconds
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(size)
        self._workers: set[asyncio.Task[None]] = set()
        self._crash: Exception | None = None
        """An unexpected error in a worker: re-raised once the others have stopped."""

    def start(self) -> None:
        """Start the workers."""
        self._workers = {asyncio.create_task(self._worker()) for _ in range(self.size)}

    async def put(self, item: Item | None) -> None:
        """Queue an item; once stopping, waiting work is dropped (it stays pending)."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                if all(worker.done() for worker in self._workers):
                    return  # nobody left to take it: the row stays pending
                if self.stop.is_set():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        self._queue.get_nowait()
                    continue
                await asyncio.sleep(0.005)  # workers are busy; a stop must not wait on them

    async def close(self) -> None:
        """No more items: wait for the workers; after a stop, give them a grace period."""
        for _ in self._workers:
            await self.put(None)
        stopped = asyncio.ensure_future(self.stop.wait())
        pending: set[Any] = set(self._workers)
        try:
            while pending and not stopped.done():
                _, pending = await asyncio.wait(
                    pending | {stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopped)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stopped.cancel()
        if self._crash is not None:
            raise self._crash

    async def _worker(self) -> None:
        """Take items until the end; an unexpected error stops the whole run, not one worker."""
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if self.stop.is_set():
                    continue
                await self.handle(item)
        except Exception as error:
            self._crash = self._crash or error
            self.stop.set()
