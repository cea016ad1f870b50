"""Ctrl-C and SIGTERM from the first moment of a command: a request to stop, never a kill.

A signal that arrives while the manifest is still being planned must not kill the process
(leaving the run marked ``running``) nor be forgotten once sending starts: the handlers are
installed when the command starts, and the request waits until the sender can honour it,
so nothing is sent after it.

    with stop_on_signals():
        ...  # planning; a signal here only sets the request
        with current().on_request(sender.interrupt): ...  # sending stops at once
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


class StopRequest:
    """Whether a stop was asked for, and who to tell when it is."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._listeners: list[Callable[[], object]] = []

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int) -> None:
        """A signal arrived (called from the signal handler, in the main thread)."""
        self.signum = signum
        for listener in list(self._listeners):
            listener()

    @contextlib.contextmanager
    def on_request(self, listener: Callable[[], object]) -> Iterator[None]:
        """Call ``listener`` on a stop, at once if one was already asked for."""
        self._listeners.append(listener)
        try:
            if self.requested:
                listener()
            yield
        finally:
            self._listeners.remove(listener)


_current: StopRequest | None = None


def current() -> StopRequest | None:
    """The stop request of the command running now, if it installed one."""
    return _current


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM only request a stop while this is active; restored after."""
    global _current
    stop = StopRequest()
    previous: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():

        def handle(signum: int, _frame: FrameType | None) -> None:
            stop.request(signum)

        for each in (signal.SIGINT, signal.SIGTERM):
            previous[each] = signal.signal(each, handle)
    _current = stop
    try:
        yield stop
    finally:
        _current = None
        for each, handler in previous.items():
            signal.signal(each, handler)  # type: ignore[arg-type]


def run_until_stopped(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, cancelled at its next ``await`` when a stop is requested.

    A stop requested before (while the ledger was being opened) cancels it before it
    starts. Either way it ends in ``KeyboardInterrupt``; without ``stop_on_signals`` this
    is plain ``asyncio.run``.
    """
    return asyncio.run(_cancelled_on_stop(main))


async def _cancelled_on_stop(main: Coroutine[Any, Any, T]) -> T:
    stop = current()
    if stop is None:
        return await main
    loop = asyncio.get_running_loop()
    task = loop.create_task(main)
    cancelled = False

    def cancel() -> None:
        nonlocal cancelled
        if not cancelled:  # a second Ctrl-C must not cut short the clean-up of the first
            cancelled = True
            loop.call_soon_threadsafe(task.cancel)

    with stop.on_request(cancel), _woken_by_signals(loop):
        try:
            return await task
        except asyncio.CancelledError:
            if stop.requested:
                raise KeyboardInterrupt from None
            raise


@contextlib.contextmanager
def _woken_by_signals(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The kernel may hand SIGINT to any thread (the resolver's, the ledger writer's); its
    handler runs only once the main thread runs Python again, which a loop waiting on a
    silent server would not do. Python writes every signal to the wake-up fd, whichever
    thread took it: the loop watches it, so the handler runs at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    loop.add_reader(reader.fileno(), _drain, reader)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()


def _drain(reader: socket.socket) -> None:
    with contextlib.suppress(OSError):
        reader.recv(4096)
