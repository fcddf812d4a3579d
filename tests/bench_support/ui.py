"""`python -m tests.bench_support.ui`: the touchscreen's figures (`make bench` calls it).

Prints: cold start to the idle screen (a fresh process, under Xvfb); the resident set size of
the UI process after every 25 of 100 simulated phone top-up journeys tapped through the real
app (must stay flat), reported apart from the platform simulator, which runs in its own
process as the operator's platform would; and, over every tap, touch-to-feedback (touch-down
to the end of the frame that drew the pressed button) and tap-to-response (touch-up to the
end of the frame after the tap's action ran), as median and 95th percentile. Targets on a
development machine under Xvfb: start under 5 s, UI RSS under 200 MB and flat, feedback
under 100 ms. Starts its own Xvfb when DISPLAY is not set. --journeys N for a shorter run.
"""

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ui import child_process
from ui.xvfb import display

COLD_START_SNIPPET = """
import sys, tempfile, time
from pathlib import Path
started = float(sys.argv[1])
from simulators.demo.touchscreen import demo_station
from tests.ui_harness import UiHarness
from ui.settings import UiSettings
terminal, sims, platform = demo_station(Path(tempfile.mkdtemp(prefix="ui-bench-")))
ui = UiHarness(terminal, UiSettings(voice=False))
ui.wait_screen("idle")
print(time.time() - started)
ui.close(); terminal.close(); sims.board.close(); platform.stop()
"""


BARE_WINDOW_SNIPPET = """
from ui.kivy_env import prepare_kivy
from ui.settings import UiSettings
prepare_kivy(UiSettings())
from kivy.base import EventLoop
EventLoop.ensure_window()
for _ in range(3):
    EventLoop.idle()
from tests.bench_support.ui import rss_mb
print(rss_mb())
"""


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """The resident set size of a process (or its RssAnon: private memory), from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def bare_window_rss_mb() -> float:
    """RSS of a process that only opens an empty Kivy window: the GL stack's own share."""
    result = subprocess.run(
        [sys.executable, "-c", BARE_WINDOW_SNIPPET],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def cold_start_s() -> float:
    result = subprocess.run(
        [sys.executable, "-c", COLD_START_SNIPPET, str(time.time())],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


@dataclass
class JourneyFigures:
    ui_rss: list[tuple[int, float]] = field(default_factory=list)  # (journeys done, MB)
    ui_private: list[tuple[int, float]] = field(default_factory=list)  # RssAnon
    simulator_rss: list[tuple[int, float]] = field(default_factory=list)
    feedback_s: list[float] = field(default_factory=list)
    response_s: list[float] = field(default_factory=list)


@contextmanager
def platform_simulator_process(database: Path) -> Iterator[tuple[str, int]]:
    """(url, pid) of `python -m simulators.platform.cli` serving database, stopped on exit.

    Started here rather than through tests.fixtures.platform, whose import brings pytest
    (about 8 MB) into the UI process that the bench measures, and no terminal runs pytest.
    """
    command = [
        sys.executable,
        "-m",
        "simulators.platform.cli",
        "--db",
        str(database),
        "--port",
        "0",
    ]
    command += ["--quiet", "--auto-confirm-deposits"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15)
        line = process.stdout.readline() if ready else ""
        if "listening on " not in line:
            raise RuntimeError(f"ui bench: the platform simulator did not start: {line!r}")
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(url + "/sim/health", timeout=5):
            pass
        yield url, process.pid
    finally:
        child_process.stop(process)


def journeys(count: int) -> JourneyFigures:
    """count phone top-ups tapped through the app, the platform simulator in its own process."""
    from simulators.demo.touchscreen import demo_station
    from tests.ui_harness import UiHarness
    from ui.settings import UiSettings

    figures = JourneyFigures()
    with (
        tempfile.TemporaryDirectory(prefix="ui-bench-") as data,
        platform_simulator_process(Path(data) / "platform.sqlite3") as (url, simulator_pid),
    ):
        terminal, sims, _ = demo_station(Path(data) / "terminal", platform_url=url)
        ui = UiHarness(terminal, UiSettings(voice=False))

        def tap(action_id: str) -> None:
            feedback, response = ui.timed_tap(action_id)
            figures.feedback_s.append(feedback)
            figures.response_s.append(response)

        def sample(done: int) -> None:
            figures.ui_rss.append((done, rss_mb()))
            figures.ui_private.append((done, rss_mb(field="RssAnon")))
            figures.simulator_rss.append((done, rss_mb(simulator_pid)))

        try:
            ui.wait_screen("idle")
            sample(0)
            for number in range(1, count + 1):
                tap("start")
                ui.wait_screen("menu")
                tap("service-mobile-topup")
                ui.wait_screen("account")
                for digit in "13800138000":
                    tap(f"key-{digit}")
                tap("confirm")
                ui.wait_screen("amount")
                tap("amount-1000")
                ui.wait_screen("topup_confirm")
                tap("pay")
                ui.wait_screen("pay_method")
                tap("pay-cash")
                ui.wait_screen("cash")
                sims.cash.insert("note", 10_00)
                ui.wait_screen("result")
                tap("done")
                ui.wait_screen("rating")
                tap("rate-good")
                ui.wait_screen("thanks")
                tap("done")
                ui.wait_screen("idle")
                if number % 25 == 0 or number == count:
                    sample(number)
        finally:
            ui.close()
            terminal.close()
            sims.board.close()
    return figures


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(median, 95th percentile) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def report(figures: JourneyFigures) -> list[str]:
    def series(samples: list[tuple[int, float]]) -> str:
        return ", ".join(f"{n}: {mb:.0f} MB" for n, mb in samples)

    first = figures.ui_rss[1] if len(figures.ui_rss) > 1 else figures.ui_rss[0]
    growth = figures.ui_rss[-1][1] - first[1]
    feedback = percentiles(figures.feedback_s)
    response = percentiles(figures.response_s)
    return [
        f"ui process RSS after journeys ({series(figures.ui_rss)}); "
        f"growth after the first sample {growth:+.1f} MB (target < 200 MB and flat)",
        f"ui process private memory (RssAnon: {series(figures.ui_private)})",
        f"platform simulator process RSS ({series(figures.simulator_rss)})",
        f"ui touch-to-feedback: median {feedback[0]:.0f} ms, p95 {feedback[1]:.0f} ms "
        f"over {len(figures.feedback_s)} taps (target < 100 ms)",
        f"ui tap-to-response: median {response[0]:.0f} ms, p95 {response[1]:.0f} ms",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench_support.ui", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--journeys", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    with display(first=120):
        print(f"ui cold start to idle screen: {cold_start_s():.2f} s (target < 5 s)", flush=True)
        print(
            f"an empty Kivy window alone (GL stack, X11, Kivy): {bare_window_rss_mb():.0f} MB RSS",
            flush=True,
        )
        for line in report(journeys(args.journeys)):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
