"""`python -m ui.screens --out build/screens`: a PNG of every screen, in both languages.

Runs ui.screen_tour on the demo station (simulated devices, I/O board, platform simulator)
and writes <screen>[-<variant>]-<lang>.png. Needs a display: without DISPLAY it starts its
own Xvfb (Debian xvfb) for the run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

XVFB_START_S = 15.0


@contextmanager
def display() -> Iterator[None]:
    """DISPLAY as it is, or a private Xvfb for the run."""
    if os.environ.get("DISPLAY"):
        yield
        return
    if shutil.which("Xvfb") is None:
        raise SystemExit("no DISPLAY and no Xvfb: apt-get install xvfb, or run on a desktop")
    number = next(
        n
        for n in range(100, 200)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    process = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + XVFB_START_S
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"Xvfb :{number} did not start")
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ui.screens", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("build/screens"))
    args = parser.parse_args(argv)
    with display():
        from ui.app import demo_station
        from ui.demo_devices import TECHNICIAN_CARD, TECHNICIAN_PIN, demo_card_number
        from ui.harness import UiHarness
        from ui.screen_tour import ScreenTour, TourDevices
        from ui.settings import UiSettings

        with tempfile.TemporaryDirectory(prefix="ui-screens-") as data:
            terminal, sims, platform = demo_station(Path(data))
            ui = UiHarness(
                terminal, UiSettings(voice=False, status_refresh_s=0.5, terminal_tick_s=0.5)
            )
            devices = TourDevices(
                sims,
                demo_card_number("electricity"),
                TECHNICIAN_PIN,
                lambda: sims.cards.insert_technician_card(TECHNICIAN_CARD),
            )
            try:
                written = ScreenTour(ui, devices, args.out).run()
            finally:
                ui.close()
                terminal.close()
                sims.board.close()
                if platform is not None:
                    platform.stop()
    print(f"{len(written)} screens written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
