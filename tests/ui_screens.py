"""`python -m tests.ui_screens --out build/screens`: every screen in both languages and all modes.

Runs tests.screen_tour on the demo station (simulated devices, I/O board, platform simulator)
and writes <screen>[-<variant>]-<lang>[-<mode>].png; exits 1, naming each problem, when
the layout check (ui.layout_check) finds one. Needs a display: without DISPLAY it starts its
own Xvfb (Debian xvfb) for the run.
"""

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ui.xvfb import display


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.ui_screens", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("build/screens"))
    args = parser.parse_args(argv)
    with display():
        from simulators.demo.devices import TECHNICIAN_CARD, TECHNICIAN_PIN, demo_card_number
        from simulators.demo.touchscreen import demo_station
        from tests.screen_tour import ScreenTour, TourDevices
        from tests.ui_harness import UiHarness
        from ui.settings import UiSettings

        with tempfile.TemporaryDirectory(prefix="ui-screens-") as data:
            terminal, sims, platform = demo_station(Path(data))
            ui = UiHarness(terminal, UiSettings(voice=False))
            devices = TourDevices(
                sims,
                demo_card_number("electricity"),
                TECHNICIAN_PIN,
                lambda: sims.cards.insert_technician_card(TECHNICIAN_CARD),
                platform.url,
            )
            tour = ScreenTour(ui, devices, args.out)
            try:
                written = tour.run()
            finally:
                ui.close()
                terminal.close()
                sims.board.close()
                if platform is not None:
                    platform.stop()
    print(f"{len(written)} screens written to {args.out}")
    for problem in tour.problems:
        print(f"layout: {problem}", file=sys.stderr)
    return 1 if tour.problems else 0


if __name__ == "__main__":
    sys.exit(main())
