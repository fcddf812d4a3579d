"""The screen tour (`make screens`): every screen in both languages and every reading mode,
each passing the layout check (no text clipped or drawn over another widget, nothing off
screen), every screen reached."""

import dataclasses
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from kiosk.catalog.sample_accounts import valid_account


def test_every_screen_in_both_languages_and_all_modes_passes_the_layout_check(
    board_rig: Any, ui_harness: Any, technician_card: Any, tmp_path: Path
) -> None:
    from tests.screen_tour import LANGUAGES, MODES, ScreenTour, TourDevices
    from ui.screens import SCREENS

    service = board_rig.terminal.catalog().service("power-card")
    card_no = valid_account(service, random.Random(3))
    board_rig.sims.cards.create_card(card_no, "electricity", "M000042")
    pin = "2468"
    # The rig's clock says 10:00: closed hours put the out-of-hours notice on every cash
    # screen, the fullest layout they have.
    config = board_rig.terminal.config
    board_rig.terminal.config = dataclasses.replace(
        config, station=dataclasses.replace(config.station, service_hours="12:00-20:00")
    )
    ui = ui_harness(board_rig.terminal)
    devices = TourDevices(
        board_rig.sims,
        card_no,
        pin,
        lambda: technician_card(board_rig, pin),
        board_rig.platform.url,
        lambda seconds: board_rig.clock.advance(timedelta(seconds=seconds)),
    )
    out = tmp_path / "screens"
    tour = ScreenTour(ui, devices, out)
    written = tour.run()

    assert tour.problems == []
    assert sorted(written) == sorted(out.iterdir())  # nothing written twice, nothing else
    modes = {mode for mode, _, _ in MODES}
    shots = set()
    for path in written:
        parts = path.stem.split("-")
        mode = parts.pop() if parts[-1] in modes - {""} else ""
        lang = parts.pop()
        shots.add((parts[0], lang, mode))
    assert shots == {
        (screen, lang, mode) for screen in SCREENS for lang in LANGUAGES for mode in modes
    }
    sizes = {Image.open(path).size for path in written}
    assert sizes == {(1280, 800)}
    # The two languages and the modes really differ on screen.
    zh, en, large = (
        Image.open(out / f"idle-{name}.png").tobytes() for name in ("zh_CN", "en", "zh_CN-large")
    )
    assert zh != en and zh != large
