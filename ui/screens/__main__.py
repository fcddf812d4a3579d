"""`python -m ui.screens --out build/screens`: a PNG of every screen reached, in both languages.

Drives the real app on the demo station (simulated devices, platform simulator) through a
bill payment, a rating, help, reprint and maintenance login, and saves each screen as
<screen>-<lang>.png. Needs a display: run it under Xvfb (xvfb-run) on a headless machine.
"""

import argparse
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ui.screens", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("build/screens"))
    args = parser.parse_args(argv)
    from kiosk.soak import valid_account
    from ui.app import demo_station
    from ui.harness import UiHarness
    from ui.settings import UiSettings

    out: Path = args.out
    with tempfile.TemporaryDirectory(prefix="ui-screens-") as data:
        terminal, sims, platform = demo_station(Path(data))
        ui = UiHarness(terminal, UiSettings(voice=False, status_refresh_s=0.5))
        written: list[Path] = []

        def snap() -> None:
            for lang in ("zh_CN", "en"):
                ui.controller.set_language(lang)
                ui.pump(3)
                path = out / f"{ui.controller.screen}-{lang}.png"
                ui.screenshot(path)
                written.append(path)
            ui.controller.set_language("zh_CN")
            ui.pump(2)

        try:
            ui.wait_screen("idle")
            snap()
            ui.tap("start")
            ui.wait_screen("menu")
            snap()
            ui.tap("service-water-bill")
            ui.wait_screen("account")
            account = valid_account(terminal.catalog().service("water-bill"), random.Random(1))
            ui.type_digits(account)
            snap()
            ui.tap("confirm")
            ui.wait_screen("confirm")
            snap()
            ui.tap("pay")
            ui.wait_screen("cash")
            sims.cash.insert("note", 50_00)
            ui.wait_for(lambda: ui.controller.cash_inserted_fen > 0, "cash")
            snap()
            while ui.controller.screen == "cash":
                sims.cash.insert("note", 100_00)
                ui.wait_for(
                    lambda: ui.controller.screen != "cash" or not ui.controller.worker.busy, "cash"
                )
                ui.pump(5)
            ui.wait_screen("result")
            snap()
            ui.tap("done")
            ui.wait_screen("rating")
            snap()
            ui.tap("rate-bad")
            ui.wait_screen("rating_reason")
            snap()
            ui.tap("reason-other")
            ui.wait_screen("thanks")
            snap()
            for screen in ("help", "reprint"):
                ui.controller.open_menu()
                ui.wait_screen("menu")
                ui.tap(f"service-{screen}")
                ui.wait_screen(screen)
                snap()
            ui.controller.open_maintenance_login()
            ui.wait_screen("maintenance_login")
            snap()
        finally:
            ui.close()
            terminal.close()
            platform.stop()
    print(f"{len(written)} screens written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
