"""`python -m ui.bench`: the touchscreen's figures (the lead calls it from `make bench`).

Prints: cold start to the idle screen (a fresh process, under Xvfb), the resident set size
after every 25 of 100 simulated phone top-up journeys tapped through the real app (must stay
flat), and touch-to-feedback latency (touch-down to the end of the next frame), as median and
95th percentile. Targets on a development machine under Xvfb: start under 5 s, RSS under
200 MB and flat, feedback under 100 ms. Starts its own Xvfb when DISPLAY is not set.
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLD_START_SNIPPET = """
import sys, tempfile, time
from pathlib import Path
started = float(sys.argv[1])
from ui.app import demo_station
from ui.harness import UiHarness
from ui.settings import UiSettings
terminal, sims, platform = demo_station(Path(tempfile.mkdtemp(prefix="ui-bench-")))
ui = UiHarness(terminal, UiSettings(voice=False))
ui.wait_screen("idle")
print(time.time() - started)
ui.close(); terminal.close(); platform.stop()
"""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_start_s() -> float:
    result = subprocess.run(
        [sys.executable, "-c", COLD_START_SNIPPET, str(time.time())],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def journeys(count: int) -> tuple[list[tuple[int, float]], list[float]]:
    from ui.app import demo_station
    from ui.harness import UiHarness
    from ui.settings import UiSettings

    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as data:
        terminal, sims, platform = demo_station(Path(data))
        ui = UiHarness(terminal, UiSettings(voice=False, status_refresh_s=30))
        try:
            ui.wait_screen("idle")
            samples.append((0, rss_mb()))
            for number in range(1, count + 1):
                latencies.append(ui.tap("start"))
                ui.wait_screen("menu")
                latencies.append(ui.tap("service-mobile-topup"))
                ui.wait_screen("account")
                for digit in "13800138000":
                    latencies.append(ui.tap(f"key-{digit}"))
                ui.tap("confirm")
                ui.wait_screen("amount")
                ui.tap("amount-1000")
                ui.wait_screen("cash")
                sims.cash.insert("note", 10_00)
                ui.wait_screen("result")
                ui.tap("done")
                ui.wait_screen("rating")
                ui.tap("rate-good")
                ui.wait_screen("thanks")
                ui.tap("done")
                ui.wait_screen("idle")
                if number % 25 == 0:
                    samples.append((number, rss_mb()))
        finally:
            ui.close()
            terminal.close()
            platform.stop()
    return samples, latencies


def main() -> int:
    xvfb = None
    if "DISPLAY" not in os.environ:
        if shutil.which("Xvfb") is None:
            print("ui bench: no DISPLAY and no Xvfb (apt-get install xvfb)", file=sys.stderr)
            return 1
        xvfb = subprocess.Popen(
            ["Xvfb", ":87", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.environ["DISPLAY"] = ":87"
        deadline = time.monotonic() + 15
        while not Path("/tmp/.X11-unix/X87").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    try:
        print(f"ui cold start to idle screen: {cold_start_s():.2f} s (target < 5 s)")
        samples, latencies = journeys(100)
        figures = ", ".join(f"{n}: {mb:.0f} MB" for n, mb in samples)
        print(f"ui RSS after journeys ({figures}); growth {samples[-1][1] - samples[1][1]:+.1f} MB")
        ordered = sorted(latencies)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        print(
            f"ui touch-to-feedback: median {statistics.median(ordered) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms over {len(ordered)} taps (target < 100 ms)"
        )
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
