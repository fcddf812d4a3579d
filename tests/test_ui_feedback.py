"""好差评 after every journey, complaints, the fee list (收费公示), help and tile icons, on the
real app under Xvfb; ratings and complaints reach the journal as signed records."""

import dataclasses
from pathlib import Path
from typing import Any

from tests.test_ui_payments import insert, shown


def test_a_cancelled_payment_is_rated_too_and_the_rating_is_a_signed_journal_record(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    ui.phone_topup_to_cash("13800138000", "amount-5000")
    insert(rig, ui, 20_00)
    ui.tap("cancel")
    ui.wait_screen("result")
    tx_id = ui.controller.journey.outcome.tx_id
    ui.tap("done")
    ui.wait_screen("rating")
    ui.tap("rate-good")
    ui.wait_screen("thanks")
    ui.settle()
    [record] = rig.records_of("rating")
    assert (record["tx_id"], record["service"], record["satisfied"]) == (
        tx_id,
        "mobile-topup",
        True,
    )
    assert record["sig"]


def test_a_journey_given_up_before_paying_offers_the_rating_and_skip_leaves(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-gas-bill")
    ui.wait_screen("account")
    ui.tap("cancel")
    ui.wait_screen("rating")
    ui.tap("skip")
    ui.wait_screen("idle")
    assert terminal_rig.records_of("rating") == []


def test_a_complaint_from_help_with_a_call_back_number_is_journaled_signed(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-help")
    ui.wait_screen("help")
    ui.tap("complain")
    ui.wait_screen("rating_reason")
    ui.tap("reason-no_receipt")
    ui.wait_screen("complaint")
    assert shown(ui, "I did not get my receipt")
    ui.type_digits("12345")
    ui.tap("send-complaint")
    ui.pump(2)
    assert ui.controller.screen == "complaint" and "11 digits" in ui.controller.journey.error
    ui.tap("key-clear")
    ui.type_digits("13800138000")
    ui.tap("send-complaint")
    ui.wait_screen("thanks")
    assert shown(ui, "call you back at 13800138000")
    [record] = rig.records_of("complaint")
    assert (record["reasons"], record["callback_phone"], record["tx_id"]) == (
        ["no_receipt"],
        "13800138000",
        None,
    )
    assert record["sig"] and rig.records_of("rating") == []  # a complaint, not a rating


def test_the_idle_screen_announces_a_fee_change_and_the_fee_list_shows_every_fee(
    terminal_rig: Any, ui_harness: Any
) -> None:
    # The shipped catalog charges ¥0.50 a water bill from 2027-01-04; the rig's day is
    # 2026-11-23, so the change is announced now.
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    assert shown(ui, "收费调整公示：水费自2027年1月4日起每笔¥0.50（现为免费）")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-tariffs")
    ui.wait_screen("tariffs")
    texts = ui.texts()
    assert texts.count("水费") == 2  # the fee in force and the announced one
    assert "每笔¥1.00" in texts  # cable TV
    assert "2027年1月4日起执行" in texts and "2024年1月1日起" in texts


def test_help_shows_the_stations_address_phone_hours_and_hotline_from_the_configuration(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    config = rig.terminal.config
    station = dataclasses.replace(
        config.station, address="历下区泉城路 12 号", phone="0531-88881234", hotline="11185"
    )
    rig.terminal.config = dataclasses.replace(config, station=station)
    ui = ui_harness(rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-help")
    ui.wait_screen("help")
    for fragment in ("历下区泉城路 12 号", "0531-88881234", "11185", "08:00-20:00", "服务承诺"):
        assert shown(ui, fragment), fragment


def test_every_service_tile_carries_its_icon_from_the_vendored_set(
    terminal_rig: Any, ui_harness: Any
) -> None:
    from kivy.uix.image import Image

    from ui.tile_icons import ICONS

    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    codes = [*terminal_rig.terminal.catalog().services, "reprint", "tariffs", "help"]
    pictures = {}
    for code in codes:
        tile = ui.find(f"service-{code}")
        [image] = [child for child in tile.children if isinstance(child, Image)]
        assert image.texture is not None and Path(image.source).parent == ICONS
        pictures[code] = Path(image.source).name
    assert len(set(pictures.values())) == len(codes)  # one icon each, none shared
    assert (ICONS / "LICENSE").is_file() and (ICONS / "LICENSE-APACHE-2.0").is_file()
