"""kiosk-tool maintenance record: the technician's visit (设备维护记录单) into the signed journal.

Takes the fault found, the repair done, a spare unit lent (备机), who bears the cost and the
next quarterly inspection (default: a quarter after the visit), journals them as a signed
`maintenance_visit` record on the terminal (kiosk.diagnostics.visit), and the durable
outbox carries it to the back office, which shows each station's last visit.
"""

import argparse
import datetime
from pathlib import Path

from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.diagnostics.visit import (
    COST_BEARER_LABELS,
    CostBearer,
    MaintenanceVisit,
    make_visit,
)
from station.composition import build_terminal


def _day(text: str, option: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            "{option} {value!r} is not a date: write it as YYYY-MM-DD", option=option, value=text
        ) from None


def _record(args: argparse.Namespace) -> int:
    t = tool_translator()
    visited = _day(args.visited, "--visited") if args.visited else None
    next_inspection = (
        _day(args.next_inspection, "--next-inspection") if args.next_inspection else None
    )
    terminal, _ = build_terminal(load_config(args.config))
    try:
        # Today at the station, by the terminal's clock: the system zone may be UTC.
        visit: MaintenanceVisit = make_visit(
            visited=visited or terminal.clock.now().date(),
            technician=args.by,
            fault=args.fault,
            repair=args.repair,
            spare_unit=args.spare_unit,
            cost_bearer=args.cost_bearer,
            next_inspection=next_inspection,
        )
        terminal.start()
        seq = terminal.record_maintenance_visit(visit)
    finally:
        terminal.close()
    data = {"seq": seq, **visit.fields()}
    text = say(
        t,
        "maintenance visit of {visited} journaled as signed record {seq}; cost borne by "
        "{bearer}; next inspection due {due}",
        visited=visit.visited.isoformat(),
        seq=seq,
        bearer=t(COST_BEARER_LABELS[visit.cost_bearer]),
        due=visit.next_inspection.isoformat(),
    )
    emit(args, data, text)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser(
        "maintenance", help="record a maintenance visit (设备维护记录单) in the signed journal"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    record = sub.add_parser(
        "record",
        help="journal the fault found, the repair, a spare unit lent and who pays",
        description=(
            "Journal a maintenance visit as a signed record that the outbox carries to the"
            " back office. The next inspection is due a quarter after the visit unless given."
        ),
    )
    record.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    record.add_argument("--by", required=True, help="the technician's name, journaled")
    record.add_argument("--fault", required=True, help="the fault found (or: none)")
    record.add_argument("--repair", required=True, help="the repair done")
    record.add_argument("--spare-unit", help="the spare unit lent (备机), by its serial number")
    record.add_argument(
        "--cost-bearer",
        choices=[str(b) for b in CostBearer],
        default=str(CostBearer.STATION),
        help="who pays for the repair (default: station, as seed 002 says)",
    )
    record.add_argument("--visited", metavar="YYYY-MM-DD", help="the day of the visit (today)")
    record.add_argument(
        "--next-inspection",
        metavar="YYYY-MM-DD",
        help="the next quarterly inspection (default: a quarter after the visit)",
    )
    record.add_argument("--json", action="store_true", help="print the record as JSON")
    record.set_defaults(handler=_record)
