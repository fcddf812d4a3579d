"""Printer profiles as data, the ESC/POS command bytes, and a receipt's job for each model."""

from pathlib import Path

import pytest

from drivers.printer import escpos_commands as esc
from drivers.printer import escpos_decoder as cmd
from drivers.printer.capabilities import LINE_PITCH_MM, paper_for_width
from drivers.printer.profiles import (
    Confirmation,
    ProfileFileError,
    UnknownPrinterModel,
    profile_for,
    read_profiles,
    shipped_profiles,
)
from drivers.printer.receipt_job import receipt_job
from kiosk.devices import ReceiptDocument, ReceiptLine

# ------------------------------------------------------------------ the shipped profiles


def test_the_shipped_profiles_cover_the_generic_model_a_clone_and_an_80mm_model() -> None:
    profiles = shipped_profiles()

    generic, clone, kiosk80 = (
        profiles["epson-compatible"],
        profiles["clone-58"],
        profiles["kiosk-80"],
    )
    assert generic.confirm is Confirmation.PROCESS_ID and generic.answers_process_id
    assert clone.confirm is Confirmation.STATUS_POLL and not clone.answers_process_id
    assert [p.width_mm for p in kiosk80.paper] == [80] and kiosk80.paper_for(80).columns == 48
    assert all(profile.encoding == "gb18030" for profile in profiles.values())


def test_auto_is_the_generic_profile_and_a_model_must_take_the_configured_paper() -> None:
    assert profile_for("auto", 58).name == "epson-compatible"
    assert profile_for("auto", 80).name == "epson-compatible"
    with pytest.raises(UnknownPrinterModel, match="takes 80 mm paper, not 58 mm"):
        profile_for("kiosk-80", 58)
    with pytest.raises(UnknownPrinterModel, match="known models: auto, clone-58, epson"):
        profile_for("tm-t88", 58)


GOOD = """
[m]
description = "a model"
model_names = ["M"]
encoding = "gb18030"
qr = "native"
cuts = ["partial"]
feed_lines = 4
confirm = "status_poll"
answers_process_id = false
print_speed_mm_s = 50
paper = [{ width_mm = 58, columns = 32, dots = 384 }]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("feed_lines = 4\n", ""), "\\[m\\]: key 'feed_lines' is missing"),
        (("qr = ", "colour = 1\nqr = "), "\\[m\\]: unknown key 'colour'"),
        (('qr = "native"', 'qr = "raster"'), "\\[m\\]: 'raster' is not a valid QrSupport"),
        (('cuts = ["partial"]', "cuts = []"), "'cuts' must name at least one cut"),
        (('confirm = "status_poll"', 'confirm = "process_id"'), "needs answers_process_id"),
        (("columns = 32", "columns = 42"), "58 mm paper must print 32 columns"),
        (("feed_lines = 4", 'feed_lines = "4"'), "key 'feed_lines' must be int"),
    ],
)
def test_a_malformed_profile_file_names_the_model_and_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(GOOD.replace(*change), encoding="utf-8")

    with pytest.raises(ProfileFileError, match=message):
        read_profiles(path)


def test_the_well_formed_example_reads(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(GOOD, encoding="utf-8")

    (profile,) = read_profiles(path).values()

    assert profile.print_speed_mm_s == 50.0 and profile.cut_for(esc.Cut.FULL) is esc.Cut.PARTIAL


# ------------------------------------------------------------------ the wire, once


def test_the_qr_and_cut_bytes_are_the_epson_reference_sequences() -> None:
    # Epson ESC/POS reference, GS ( k cn=49 fn 65/67/69/80/81 and GS V m (the same bytes
    # python-escpos 3.1 sent before it was dropped).
    assert esc.qr_code(b"KR1:test", 4, "M") == bytes.fromhex(
        "1d286b0400314132001d286b03003143041d286b03003145311d286b0b00315030"
        "4b52313a746573741d286b0300315130"
    )
    assert esc.feed_lines(6) + esc.cut(esc.Cut.FULL) == bytes.fromhex("1b64061d5600")
    assert esc.cut(esc.Cut.PARTIAL) == bytes.fromhex("1d5601")
    assert esc.process_id_request("0001") == bytes.fromhex("1d28480600303030303031")


def test_every_command_the_driver_builds_decodes_as_that_command() -> None:
    sent = [
        (esc.INITIALIZE, cmd.Initialize()),
        (esc.BOLD[True], cmd.Bold(True)),
        (esc.SIZE[True], cmd.CharacterSize(2, 2)),
        (esc.ALIGN["right"], cmd.Align("right")),
        (esc.FONT_B, cmd.Font("B")),
        (esc.CHINESE_ON, cmd.ChineseMode(True)),
        (esc.feed_lines(5), cmd.FeedLines(5)),
        (esc.cut(esc.Cut.FULL), cmd.Cut(full=True)),
        (esc.cut(esc.Cut.PARTIAL), cmd.Cut(full=False)),
        (esc.process_id_request("A0Z9"), cmd.ProcessIdRequest("A0Z9")),
        (esc.status_query(3), cmd.StatusQuery(3)),
        (esc.CLEAR_BUFFERS, cmd.ClearBuffers()),
    ]
    for data, command in sent:
        assert cmd.EscPosDecoder().feed(data) == [command], data.hex(" ")
    qr = cmd.EscPosDecoder().feed(esc.qr_code(b"payload", 5, "Q"))
    assert qr == [
        cmd.QrModel(2),
        cmd.QrModuleSize(5),
        cmd.QrErrorLevel("Q"),
        cmd.QrStore(b"payload"),
        cmd.QrPrint(),
    ]


# ------------------------------------------------------------------ a receipt per model

DOCUMENT = ReceiptDocument(
    "R-9/0",
    (ReceiptLine("缴费凭条", double=True), *(ReceiptLine(f"line {n}") for n in range(10))),
    qr_payload="KR1:payload",
    cut="full",
)


def decoded(data: bytes) -> list[cmd.Command]:
    return cmd.EscPosDecoder().feed(data)


def test_a_partial_only_cutter_gets_a_partial_cut_and_its_own_feed() -> None:
    clone = profile_for("clone-58", 58)

    commands = decoded(receipt_job(DOCUMENT, clone, paper_for_width(58)).data)

    assert commands[-2:] == [cmd.FeedLines(clone.feed_lines), cmd.Cut(full=False)]
    assert not any(isinstance(c, cmd.Unknown) for c in commands)


def test_a_full_cut_is_sent_to_a_model_that_has_one() -> None:
    kiosk80 = profile_for("kiosk-80", 80)

    commands = decoded(receipt_job(DOCUMENT, kiosk80, paper_for_width(80)).data)

    assert commands[-2:] == [cmd.FeedLines(kiosk80.feed_lines), cmd.Cut(full=True)]


def test_the_paper_a_job_takes_grows_with_its_rows_and_counts_double_height_twice() -> None:
    generic, paper = profile_for("auto", 58), paper_for_width(58)
    short = ReceiptDocument("R-1/0", (ReceiptLine("a"),))
    tall = ReceiptDocument("R-1/0", (ReceiptLine("a", double=True),))
    longer = ReceiptDocument("R-1/0", (ReceiptLine("a"), ReceiptLine("b")))
    with_qr = ReceiptDocument("R-1/0", (ReceiptLine("a"),), qr_payload="KR1:x")

    base = receipt_job(short, generic, paper).paper_mm

    assert receipt_job(tall, generic, paper).paper_mm - base == pytest.approx(LINE_PITCH_MM)
    assert receipt_job(longer, generic, paper).paper_mm - base == pytest.approx(LINE_PITCH_MM)
    # A version 1 symbol with its quiet zone is 29 modules, printed at 6 dots (8 per mm).
    qr_mm = 29 * 6 / 8
    assert receipt_job(with_qr, generic, paper).paper_mm - base == pytest.approx(
        qr_mm + LINE_PITCH_MM
    )
