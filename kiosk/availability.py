"""Which services a terminal can offer right now, and why not: pure business logic.

Owns the table of what each kind of service needs (cash acceptor, printer, card reader,
signature token, operator platform, prepaid float, a terminal in service: no tamper alarm
latched, no technician at work) and the reading of device health dictionaries into plain
reasons. It never talks to a device itself (snapshot_of asks the terminal once), never
imports Kivy, and never decides how a screen shows it.
Reasons are English message ids; the UI translates them (ui.po).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal

from kiosk.catalog import Catalog
from kiosk.errors import KioskError

Need = Literal["cash", "printer", "card_reader", "signer", "platform", "float", "in_service"]

# What every kind of journey needs to run to the end. A printer is needed by every money
# service because cash that cannot be paid out must leave as a printed voucher.
# "in_service": the core refuses every payment after a tamper alarm or in maintenance mode.
NEEDS: Mapping[str, tuple[Need, ...]] = {
    "bill": ("in_service", "cash", "printer", "signer", "platform", "float"),
    "phone_topup": ("in_service", "cash", "printer", "signer", "platform", "float"),
    "card_topup": ("in_service", "cash", "printer", "card_reader", "signer", "platform", "float"),
    "reprint": ("printer",),
    "help": (),
}

# The reasons, as English message ids (translated in kiosk/locale/*/LC_MESSAGES/ui.po).
CASH_OFFLINE = "The cash acceptor is not working"
CASH_JAMMED = "The cash acceptor is jammed"
PRINTER_PAPER_OUT = "The receipt printer is out of paper"
PRINTER_COVER_OPEN = "The receipt printer's cover is open"
PRINTER_OFFLINE = "The receipt printer is not working"
READER_MISSING = "The card reader is not working"
SIGNER_MISSING = "The signature device (USBKey) is not working"
PLATFORM_DOWN = "The operator's platform cannot be reached"
FLOAT_TOO_LOW = "The station's prepaid float is too low"
TAMPER_ALARM = "The terminal's case was opened (tamper alarm): the station staff have been told"
IN_MAINTENANCE = "A technician is servicing the terminal"

Status = Literal["in_service", "partial", "out_of_service"]


@dataclass(frozen=True)
class TerminalSnapshot:
    """What the terminal knows about its devices and accounts at one moment.

    A health dictionary is None when the device did not answer at all. platform_ok is
    None when nothing is known yet (treated as working: the first call will tell), and
    float_available_fen None when the float was never read.
    """

    cash: Mapping[str, object] | None
    printer: Mapping[str, object] | None
    card_reader: Mapping[str, object] | None
    signer_ok: bool
    platform_ok: bool | None = None
    float_available_fen: int | None = None
    tamper_latched: bool = False
    in_maintenance: bool = False


@dataclass(frozen=True)
class ServiceAvailability:
    code: str
    available: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _cash_problem(health: Mapping[str, object] | None) -> str | None:
    if health is None or health.get("online") is not True:
        return CASH_OFFLINE
    if health.get("jammed") is True:
        return CASH_JAMMED
    return None


def _printer_problem(health: Mapping[str, object] | None) -> str | None:
    if health is None:
        return PRINTER_OFFLINE
    # A printer stopped for paper or its cover reports itself offline too (DLE EOT 1): the
    # cause a person can fix comes first.
    if health.get("paper_out") is True:
        return PRINTER_PAPER_OUT
    if health.get("cover_open") is True:
        return PRINTER_COVER_OPEN
    if health.get("online") is not True:
        return PRINTER_OFFLINE
    if health.get("paper_out") is not False:
        return PRINTER_PAPER_OUT
    if health.get("cover_open") is not False:
        return PRINTER_COVER_OPEN
    if health.get("error") is True:
        return PRINTER_OFFLINE
    return None


def _reader_problem(health: Mapping[str, object] | None) -> str | None:
    if health is None or health.get("connected") is not True:
        return READER_MISSING
    return None


def need_problems(snapshot: TerminalSnapshot) -> dict[Need, str]:
    """The reason each failing need fails; a need not in the result works."""
    found: dict[Need, str | None] = {
        "cash": _cash_problem(snapshot.cash),
        "printer": _printer_problem(snapshot.printer),
        "card_reader": _reader_problem(snapshot.card_reader),
        "signer": None if snapshot.signer_ok else SIGNER_MISSING,
        "platform": PLATFORM_DOWN if snapshot.platform_ok is False else None,
        "in_service": (
            TAMPER_ALARM
            if snapshot.tamper_latched
            else IN_MAINTENANCE
            if snapshot.in_maintenance
            else None
        ),
    }
    return {need: reason for need, reason in found.items() if reason is not None}


def availability(
    kind: str, code: str, snapshot: TerminalSnapshot, minimum_fen: int = 0
) -> ServiceAvailability:
    """Whether one service of kind can run; minimum_fen is the least it can ever charge."""
    try:
        needs = NEEDS[kind]
    except KeyError:
        raise KioskError(
            f"service kind {kind!r} has no availability rule: add it to kiosk.availability.NEEDS"
        ) from None
    problems = need_problems(snapshot)
    reasons = [problems[need] for need in needs if need in problems]
    if (
        "float" in needs
        and snapshot.float_available_fen is not None
        and snapshot.float_available_fen < max(minimum_fen, 1)
    ):
        reasons.append(FLOAT_TOO_LOW)
    return ServiceAvailability(code, not reasons, tuple(dict.fromkeys(reasons)))


def service_availability(
    catalog: Catalog, snapshot: TerminalSnapshot
) -> dict[str, ServiceAvailability]:
    """Every catalog service plus "reprint" and "help", in the catalog's order."""
    result = {
        code: availability(service.kind, code, snapshot, service.min_fen)
        for code, service in catalog.services.items()
    }
    for extra in ("reprint", "help"):
        result[extra] = availability(extra, extra, snapshot)
    return result


def terminal_status(services: Mapping[str, ServiceAvailability]) -> Status:
    """in_service when every money service runs, out_of_service when none does."""
    money = [a for code, a in services.items() if code not in ("reprint", "help")]
    working = sum(1 for a in money if a.available)
    if money and working == len(money):
        return "in_service"
    if working == 0:
        return "out_of_service"
    return "partial"


# [station] service_hours: when the station's staff are there (they pay vouchers out).
SERVICE_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)\Z")


def parse_service_hours(hours: str) -> tuple[time, time | None]:
    """(opening, closing) of "HH:MM-HH:MM"; closing None for 24:00. A closing time before
    the opening one runs past midnight ("20:00-02:00"). ValueError for anything else."""
    found = SERVICE_HOURS.match(hours)
    if found is None or (found[3] == "24" and found[4] != "00"):
        raise ValueError(f"service hours {hours!r} are not written HH:MM-HH:MM, e.g. 08:00-20:00")
    opening = time(int(found[1]), int(found[2]))
    closing = None if found[3] == "24" else time(int(found[3]), int(found[4]))
    if closing == opening:
        raise ValueError(f"service hours {hours!r} open and close at the same time")
    return opening, closing


def within_service_hours(hours: str, now: datetime) -> bool:
    """Whether now (local time) is inside the station's service hours."""
    opening, closing = parse_service_hours(hours)
    moment = now.time().replace(tzinfo=None)
    if closing is None:
        return moment >= opening
    if opening < closing:
        return opening <= moment < closing
    return moment >= opening or moment < closing


def snapshot_of(terminal: Any, platform_ok: bool | None = None) -> TerminalSnapshot:
    """Ask a kiosk.terminal.Terminal once (blocking: call it off the UI thread).

    Device health comes from Terminal.device_health() (a device whose report failed is
    read as not working); platform_ok is what the caller last learned from the platform
    (a refused or unreachable call): the terminal keeps no such state itself.
    """
    health = terminal.device_health()
    state = terminal.float_account.last_known()
    return TerminalSnapshot(
        cash=health.get("cash"),
        printer=health.get("printer"),
        card_reader=health.get("card_reader"),
        signer_ok=bool(terminal.journal.signing_available()),
        platform_ok=platform_ok,
        float_available_fen=None if state is None else state.available_fen,
        tamper_latched=terminal.tamper_latched,
        in_maintenance=terminal.service_state() == "maintenance",
    )
