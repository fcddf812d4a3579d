"""Service availability read from the simulators' real health reports and the terminal's state."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.availability import (
    CASH_JAMMED,
    FLOAT_TOO_LOW,
    IN_MAINTENANCE,
    PLATFORM_DOWN,
    PRINTER_PAPER_OUT,
    READER_MISSING,
    SIGNER_MISSING,
    TAMPER_ALARM,
    TerminalSnapshot,
    availability,
    service_availability,
    snapshot_of,
    terminal_status,
)
from kiosk.catalog import load_signed_catalog, shipped_catalog_files, shipped_operator_public_pem
from kiosk.errors import KioskError
from simulators.cash import SimulatedCashAcceptor
from simulators.printer import SimulatedPrinter
from simulators.smartcard import SimulatedCardReader

CATALOG = load_signed_catalog(*shipped_catalog_files(), shipped_operator_public_pem())
CARD_SERVICES = {c for c, s in CATALOG.services.items() if s.kind == "card_topup"}


class Devices:
    def __init__(self, base: Path) -> None:
        self.cash = SimulatedCashAcceptor(base / "cash.sqlite3")
        self.cards = SimulatedCardReader(base / "cards.sqlite3")
        self.printer = SimulatedPrinter(base / "receipts")

    def snapshot(self, **overrides: Any) -> TerminalSnapshot:
        values: dict[str, Any] = {
            "cash": self.cash.health(),
            "printer": self.printer.health(),
            "card_reader": self.cards.health(),
            "signer_ok": True,
            "platform_ok": True,
            "float_available_fen": 1_000_000,
        }
        values.update(overrides)
        return TerminalSnapshot(**values)


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[Devices]:
    rig = Devices(tmp_path)
    yield rig
    rig.cash.close()
    rig.cards.close()
    rig.printer.close()


def test_every_service_is_available_when_every_device_works(devices: Devices) -> None:
    services = service_availability(CATALOG, devices.snapshot())
    assert all(a.available and not a.reasons for a in services.values())
    assert set(services) == {*CATALOG.services, "reprint", "help"}
    assert terminal_status(services) == "in_service"


def test_an_unplugged_card_reader_stops_only_the_card_top_ups(devices: Devices) -> None:
    devices.cards.unplug()
    services = service_availability(CATALOG, devices.snapshot())
    unavailable = {code for code, a in services.items() if not a.available}
    assert unavailable == CARD_SERVICES
    assert all(services[c].reasons == (READER_MISSING,) for c in CARD_SERVICES)
    assert terminal_status(services) == "partial"


def test_a_printer_out_of_paper_puts_the_terminal_out_of_service_but_help_stays(
    devices: Devices,
) -> None:
    devices.printer.paper_out()
    services = service_availability(CATALOG, devices.snapshot())
    assert services["water-bill"].reasons == (PRINTER_PAPER_OUT,)
    assert not services["reprint"].available
    assert services["help"].available
    assert terminal_status(services) == "out_of_service"


def test_a_jammed_acceptor_and_a_missing_token_are_both_given_as_reasons(devices: Devices) -> None:
    devices.cash.jam()
    services = service_availability(CATALOG, devices.snapshot(signer_ok=False))
    assert services["mobile-topup"].reasons == (CASH_JAMMED, SIGNER_MISSING)
    assert services["reprint"].available


def test_a_platform_known_to_be_down_stops_money_services(devices: Devices) -> None:
    services = service_availability(CATALOG, devices.snapshot(platform_ok=False))
    assert services["gas-bill"].reasons == (PLATFORM_DOWN,)
    unknown = service_availability(CATALOG, devices.snapshot(platform_ok=None))
    assert unknown["gas-bill"].available


def test_a_float_below_a_services_minimum_stops_that_service_only(devices: Devices) -> None:
    power = CATALOG.service("power-card")
    snapshot = devices.snapshot(float_available_fen=power.min_fen - 1)
    services = service_availability(CATALOG, snapshot)
    assert services["power-card"].reasons == (FLOAT_TOO_LOW,)
    assert services["water-bill"].available  # a bill can be as small as 1 fen
    assert not service_availability(CATALOG, devices.snapshot(float_available_fen=0))[
        "water-bill"
    ].available


def test_a_device_that_does_not_answer_is_never_read_as_working(devices: Devices) -> None:
    devices.cash.go_offline()
    snapshot = devices.snapshot(printer=None)
    services = service_availability(CATALOG, snapshot)
    assert terminal_status(services) == "out_of_service"


def test_an_unknown_kind_of_service_is_refused_with_the_fix() -> None:
    snapshot = TerminalSnapshot(None, None, None, signer_ok=True)
    with pytest.raises(KioskError, match="NEEDS"):
        availability("lottery", "x", snapshot)


def test_snapshot_of_a_running_terminal_reads_its_devices_and_float(terminal_rig: Any) -> None:
    terminal_rig.sims.printer.cover_open()
    snapshot = snapshot_of(terminal_rig.terminal, platform_ok=True)
    assert snapshot.printer is not None and snapshot.printer["cover_open"] is True
    assert snapshot.signer_ok is True
    assert snapshot.float_available_fen is not None and snapshot.float_available_fen > 0
    services = service_availability(terminal_rig.terminal.catalog(), snapshot)
    assert terminal_status(services) == "out_of_service"


def test_a_latched_tamper_alarm_stops_every_money_service_but_not_reprint_or_help(
    devices: Devices,
) -> None:
    services = service_availability(CATALOG, devices.snapshot(tamper_latched=True))
    money = {code for code in services if code not in ("reprint", "help")}
    assert all(services[code].reasons == (TAMPER_ALARM,) for code in money)
    assert services["reprint"].available and services["help"].available
    assert terminal_status(services) == "out_of_service"


def test_maintenance_mode_stops_money_services_with_its_own_reason(devices: Devices) -> None:
    services = service_availability(CATALOG, devices.snapshot(in_maintenance=True))
    assert services["water-bill"].reasons == (IN_MAINTENANCE,)
    both = service_availability(CATALOG, devices.snapshot(in_maintenance=True, tamper_latched=True))
    assert both["water-bill"].reasons == (TAMPER_ALARM,)  # the graver reason is the one shown


def test_snapshot_of_a_terminal_reads_its_tamper_latch_and_maintenance_mode(
    terminal_rig: Any,
) -> None:
    terminal = terminal_rig.terminal
    assert not snapshot_of(terminal).in_maintenance
    terminal.enter_maintenance("TECH-007")
    assert snapshot_of(terminal).in_maintenance
    terminal.leave_maintenance()
    assert not snapshot_of(terminal).in_maintenance
    assert not snapshot_of(terminal).tamper_latched


def test_snapshot_of_reads_a_device_whose_health_fails_as_not_working(terminal_rig: Any) -> None:
    terminal_rig.sims.cards.unplug()
    snapshot = snapshot_of(terminal_rig.terminal, platform_ok=True)
    services = service_availability(terminal_rig.terminal.catalog(), snapshot)
    assert services["power-card"].reasons == (READER_MISSING,)


@pytest.mark.parametrize(
    ("stopped", "reason"),
    [({"paper_out": True}, "PRINTER_PAPER_OUT"), ({"cover_open": True}, "PRINTER_COVER_OPEN")],
)
def test_a_printer_stopped_for_paper_or_cover_names_that_cause_though_it_reports_offline(
    stopped: dict[str, bool], reason: str
) -> None:
    import kiosk.availability as rules

    # What DLE EOT 1 gives a real ESC/POS printer that stopped: offline, with the cause.
    printer = {"online": False, "paper_out": False, "cover_open": False, "error": False}
    snapshot = TerminalSnapshot(None, {**printer, **stopped}, None, signer_ok=True)
    assert rules.need_problems(snapshot)["printer"] == getattr(rules, reason)


@pytest.mark.parametrize(
    ("hours", "moment", "staffed"),
    [
        ("08:00-20:00", "07:59", False),
        ("08:00-20:00", "08:00", True),
        ("08:00-20:00", "19:59", True),
        ("08:00-20:00", "20:00", False),
        ("20:00-02:00", "23:30", True),  # past midnight
        ("20:00-02:00", "01:59", True),
        ("20:00-02:00", "02:00", False),
        ("00:00-24:00", "23:59", True),
    ],
)
def test_service_hours_tell_whether_staff_are_at_the_station(
    hours: str, moment: str, staffed: bool
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from kiosk.availability import within_service_hours

    hour, minute = (int(part) for part in moment.split(":"))
    now = datetime(2026, 11, 23, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert within_service_hours(hours, now) is staffed


@pytest.mark.parametrize("hours", ["8:00-20:00", "08:00-20:60", "08:00-24:30", "08:00-08:00", ""])
def test_service_hours_written_otherwise_stop_the_terminal_at_start_with_the_key(
    hours: str, tmp_path: Any
) -> None:
    from kiosk.config import parse_config
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError, match="station.service_hours"):
        parse_config(
            {
                "data_dir": str(tmp_path),
                "station": {
                    "institution_no": "1",
                    "name": "n",
                    "terminal_id": "T1",
                    "service_hours": hours,
                },
                "platform": {"url": "http://127.0.0.1:1"},
                "token": {"kind": "software"},
            }
        )
