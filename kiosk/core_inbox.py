"""Calls handed from other threads to the terminal's own thread.

The core is single-threaded: one SQLite connection, one set of devices. The touchscreen,
telemetry's remote commands and tests hand it calls here; the runtime's loop (kiosk.runtime)
runs them in order between its own duties and wakes as soon as one arrives. It never runs a
call itself on the caller's thread and never drops one: a caller that stops waiting gets
told the call is still queued or running, it is not cancelled behind its back.
"""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class TerminalThreadInbox:
    """Calls for the terminal's thread, which runs them in run_pending()."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._arrived = threading.Event()

    def submit(self, function: Callable[[], T]) -> "Future[T]":
        """Queue function for the terminal's thread; its Future holds the result or error."""
        future: Future[T] = Future()
        self._calls.put((function, future))
        self._arrived.set()
        return future

    def call(self, function: Callable[[], T], timeout_s: float | None = None) -> T:
        """Run function on the terminal's thread and wait for it (TimeoutError after
        timeout_s, with the call still queued or running: it is never cancelled)."""
        return self.submit(function).result(timeout=timeout_s)

    def wait(self, timeout_s: float) -> bool:
        """Sleep until a call arrives or timeout_s passed; True if calls are waiting."""
        arrived = self._arrived.wait(timeout_s)
        self._arrived.clear()
        return arrived or not self._calls.empty()

    @property
    def waiting(self) -> int:
        return self._calls.qsize()

    def run_pending(self, limit: int | None = None) -> int:
        """Run the calls waiting (at most limit) on the terminal's thread; return how many."""
        ran = 0
        while limit is None or ran < limit:
            try:
                function, future = self._calls.get_nowait()
            except queue.Empty:
                return ran
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed back to the caller's thread
                future.set_exception(exc)
            ran += 1
        return ran
