"""A stop asked for by a signal that another thread received still stops the command."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from importer.send.stopping import run_until_stopped, stop_on_signals


def test_a_signal_delivered_to_another_thread_still_stops_a_waiting_command() -> None:
    woken_from_outside = threading.Event()
    release = threading.Event()

    async def waits_on_a_server_that_never_answers() -> None:
        loop = asyncio.get_running_loop()
        never: asyncio.Future[None] = loop.create_future()

        def interrupt_from_another_thread() -> None:
            time.sleep(0.5)  # until the loop waits in the kernel: a real wait, no clock to fake
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            # The bug was a wait forever; after 20 s the loop is woken from here, and the
            # test fails saying so.
            if not release.wait(20):
                woken_from_outside.set()
                loop.call_soon_threadsafe(lambda: None)

        threading.Thread(target=interrupt_from_another_thread, daemon=True).start()
        await never

    with stop_on_signals() as stop, pytest.raises(KeyboardInterrupt):
        run_until_stopped(waits_on_a_server_that_never_answers())
    release.set()
    assert stop.signum == signal.SIGINT
    assert not woken_from_outside.is_set(), "the stop waited for something else to wake the loop"
