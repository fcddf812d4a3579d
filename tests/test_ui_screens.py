"""The screen tour (`make screens`): one PNG per screen and language, every screen reached."""

import random
from pathlib import Path
from typing import Any

from PIL import Image

from kiosk.catalog.sample_accounts import valid_account


def test_the_screen_tour_writes_a_png_of_every_screen_in_both_languages(
    board_rig: Any, ui_harness: Any, technician_card: Any, tmp_path: Path
) -> None:
    from ui.screen_tour import LANGUAGES, ScreenTour, TourDevices
    from ui.screens import SCREENS

    service = board_rig.terminal.catalog().service("power-card")
    card_no = valid_account(service, random.Random(3))
    board_rig.sims.cards.create_card(card_no, "electricity", "M000042")
    pin = "2468"
    ui = ui_harness(board_rig.terminal)
    devices = TourDevices(board_rig.sims, card_no, pin, lambda: technician_card(board_rig, pin))
    out = tmp_path / "screens"
    written = ScreenTour(ui, devices, out).run()

    assert sorted(written) == sorted(out.iterdir())  # nothing written twice, nothing else
    shots = {
        (path.stem.rsplit("-", 1)[0].split("-")[0], path.stem.rsplit("-", 1)[1]) for path in written
    }
    assert shots == {(screen, lang) for screen in SCREENS for lang in LANGUAGES}
    sizes = {Image.open(path).size for path in written}
    assert sizes == {(1280, 800)}
    # The two languages really differ on screen.
    zh, en = (Image.open(out / f"idle-{lang}.png").tobytes() for lang in LANGUAGES)
    assert zh != en
