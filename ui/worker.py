"""One worker thread for every blocking call into the terminal core.

The core's calls talk to devices, SQLite and the platform over HTTP; they must never block
the Kivy main thread, and they must never run two at a time (one database connection, one
set of devices). Results come back through `post`, which runs them on the main thread.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Post = Callable[[Callable[[], None]], None]


class CoreWorker:
    def __init__(self, post: Post) -> None:
        self._post = post
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-core")
        self._lock = threading.Lock()
        self._pending = 0

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
            self._pending += 1
        future = self._pool.submit(call)

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

    def run(self, call: Callable[[], Any]) -> Any:
        """Run call on the worker and wait (for shutdown and maintenance only)."""
        return self._pool.submit(call).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
