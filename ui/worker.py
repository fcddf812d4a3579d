"""The touchscreen's door to the terminal's thread: every core call goes through it.

The core's calls talk to devices, SQLite and the platform over HTTP; they must never block
the Kivy main thread, and they must never run two at a time (one database connection, one
set of devices). The runtime (kiosk.runtime) owns the terminal's thread; this hands each
call to its inbox, in order, and posts the result back through `post`, which runs it on the
main thread. `busy` says whether a call of the screens is still on its way.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Post = Callable[[Callable[[], None]], None]
Submit = Callable[[Callable[[], Any]], "Future[Any]"]


class CoreWorker:
    def __init__(self, post: Post, submit: Submit) -> None:
        self._post = post
        self._submit = submit
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def submit(
        self,
        call: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[Exception], None],
    ) -> None:
        with self._lock:
            if self._closed:
                log.info("core call dropped: the app is closing")
                return
            self._pending += 1
        future: Future[T] = self._submit(call)

        def deliver(finished: "Future[T]") -> None:
            error = finished.exception()

            def on_main() -> None:
                with self._lock:
                    self._pending -= 1
                if error is None:
                    done(finished.result())
                elif isinstance(error, Exception):
                    failed(error)
                else:  # pragma: no cover - KeyboardInterrupt and the like
                    raise error

            self._post(on_main)

        future.add_done_callback(deliver)

    def run(self, call: Callable[[], T]) -> T:
        """Run call on the terminal's thread and wait (start-up and shutdown only)."""
        result: T = self._submit(call).result()
        return result

    def shutdown(self) -> None:
        """Take no more calls; the runtime finishes those already handed over."""
        with self._lock:
            self._closed = True
