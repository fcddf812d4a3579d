"""`make demo`: the terminal on embedded defaults, headless, with everything simulated.

Starts the platform simulator on a loopback port, makes a demo station identity (a
software key: every record it signs says so), builds the real terminal core on simulated
devices under var/demo/, and walks one station operator's day through it (seed 002):
the station has no float (the credit line is zero), so the operator logs in with the
operator card and PIN and records the float bought at the postal outlet with its slip;
the platform confirms it. Three residents follow: a water bill paid with an overpayment
credited, a phone top-up whose surplus becomes a voucher, and an electricity card top-up
whose card is pulled mid-credit and completed when it comes back. The operator pays the
voucher out when its holder comes back, empties and counts the cash box (清机), and closes
the day (日终轧帐) with its 轧帐单 printed: it balances. The day's commission is worked out
from the catalog as the back office's monthly statement will (kiosk.catalog.commission).
Then the journal is verified. With --serve it keeps the terminal running (Ctrl-C to stop).
"""

import argparse
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.catalog.commission import commission_statement
from kiosk.catalog.sample_accounts import valid_account
from kiosk.config import Config, parse_config
from kiosk.journal import verify_jsonl
from kiosk.ledger.cash_box import CashCount, Denomination
from kiosk.money import format_fen
from kiosk.terminal import Terminal
from kiosk.transactions.engine import Outcome
from station.composition import SimulatedDevices, build_terminal

STATION = "33078200001"
TERMINAL = "T0001"
NAME = "青山社区便民服务站"
OPERATOR_CARD = "8700000001"
OPERATOR_ID = "OP-0001"
OPERATOR_PIN = "135790"  # the demo card's; a real card's PIN is the operator's secret
# The float the station buys at the postal outlet for the demo day (seed 002: >= 500 yuan).
DEPOSIT_FEN = 2_000_00


def demo_config(data: Path, platform_url: str) -> Config:
    return parse_config(
        {
            "data_dir": str(data),
            "station": {"institution_no": STATION, "name": NAME, "terminal_id": TERMINAL},
            "platform": {"url": platform_url},
            "token": {
                "kind": "software",
                "key_file": str(data / "token" / "station-key.pem"),
                "cert_file": str(data / "token" / "station-cert.pem"),
            },
        },
        source="<demo defaults>",
    )


def demo_signer(config: Config) -> SoftwareSigner:
    key, cert = Path(config.token.key_file), Path(config.token.cert_file)
    if key.exists():
        return SoftwareSigner.from_files(key, cert)
    return create_software_identity(
        key, cert, institution_no=STATION, terminal_id=TERMINAL, station_name=NAME
    )


def show(outcome: Outcome, receipts: Path) -> None:
    print(
        f"   -> {outcome.outcome}; receipt {outcome.receipt_no}; "
        f"voucher {format_fen(outcome.voucher_fen)}; credited {format_fen(outcome.credited_fen)}"
        + (f"; card credit {outcome.card_credit}" if outcome.card_credit else "")
    )
    if outcome.receipt_no:
        for path in sorted(receipts.glob(f"{outcome.receipt_no}*.txt")):
            text = path.read_text(encoding="utf-8")
            print("   " + "\n   ".join(text.splitlines()[:-2]))


def operator_logs_in(terminal: Terminal, sims: SimulatedDevices) -> None:
    cards = sims.cards
    try:
        cards.operator_card(OPERATOR_CARD)
    except ValueError:
        cards.create_operator_card(OPERATOR_CARD, OPERATOR_ID, OPERATOR_PIN)
    cards.remove_card()
    cards.insert_operator_card(OPERATOR_CARD)
    actor = terminal.operator.login(OPERATOR_PIN)
    print(f"   operator {actor.id} logged in with the operator card and PIN")


def operator_logs_out(terminal: Terminal, sims: SimulatedDevices) -> None:
    terminal.operator.logout()
    sims.cards.remove_card()


def buy_float(terminal: Terminal, sims: SimulatedDevices, platform: Any) -> None:
    state = terminal.float_account.last_known()
    balance = 0 if state is None else state.balance_fen
    print(
        f"0. The station's float is {format_fen(balance)} (the credit line is zero); the "
        f"operator bought {format_fen(DEPOSIT_FEN)} of float at the postal outlet"
    )
    operator_logs_in(terminal, sims)
    slip = f"PS{date.today():%Y%m%d}-{uuid.uuid4().hex[:6].upper()}"
    entry = terminal.operator.record_deposit(DEPOSIT_FEN, slip)
    print(f"   deposit on slip {entry.slip_no} recorded: {entry.state}")
    platform.ledger.confirm_deposit(entry.key, platform.now())  # the operator's back office
    terminal.operator.check_deposits()
    overview = terminal.operator.float_overview()
    print(
        f"   the platform confirmed it: float {format_fen(overview.balance_fen or 0)}, "
        f"pending {format_fen(overview.pending_deposits_fen)}"
    )
    operator_logs_out(terminal, sims)


def ensure_demo_float(terminal: Terminal) -> None:
    """For a demo on a simulator that confirms deposits at once (the touchscreen demo's and
    its bench's, `auto_confirm_deposits`): record a float purchase when the float is low, as
    a technician would with kiosk-tool, so that residents can pay (the credit line is zero)."""
    from kiosk.operator import Actor, Role

    if not terminal.operator.float_overview(actor=Actor("demo", Role.TECHNICIAN)).low:
        return
    slip = f"PS{date.today():%Y%m%d}-{uuid.uuid4().hex[:6].upper()}"
    terminal.operator.record_deposit(DEPOSIT_FEN, slip, actor=Actor("demo", Role.TECHNICIAN))


def exact_count(amount_fen: int) -> CashCount:
    """The count of a box holding amount_fen, largest denominations first (the demo's
    operator counts what the journal expects: the day balances)."""
    pieces: dict[Denomination, int] = {}
    for denomination in sorted(Denomination, key=lambda d: -d.value_fen):
        pieces[denomination], amount_fen = divmod(amount_fen, denomination.value_fen)
    return CashCount(pieces)


def operators_evening(terminal: Terminal, sims: SimulatedDevices, voucher: str | None) -> None:
    print("4. Evening: the operator logs in again")
    operator_logs_in(terminal, sims)
    desk = terminal.operator
    if voucher:
        found = desk.voucher_lookup(voucher)
        payout = desk.pay_voucher(voucher, found.amount_fen)
        print(
            f"   the phone top-up's voucher {voucher[:4]}-... came back: "
            f"{'paid out' if payout.paid else 'not confirmed yet'} {format_fen(payout.amount_fen)}"
        )
    expected = desk.cash_expected_fen()
    collected = desk.collect_cash(exact_count(expected))
    print(
        f"   cash box collected (清机): expected {format_fen(expected)}, counted "
        f"{format_fen(int(str(collected.record['counted_fen'])))}, "
        f"difference {format_fen(int(str(collected.record['discrepancy_fen'])))}"
    )
    now = terminal.clock.now()
    if terminal.calendar.open_day(now) > terminal.calendar.day_of(now):
        print(
            f"   business day {terminal.calendar.day_of(now)} was closed by an earlier run of "
            f"the demo: today's sales belong to {terminal.calendar.open_day(now)}, which "
            "closes at its cut-off (run the demo on a fresh --data to see the day sheet)"
        )
        operator_logs_out(terminal, sims)
        return
    closed = desk.close_day()
    day = closed.record
    verdict = {True: "it balances (账账相符)", False: "it does NOT balance"}.get(
        day["balanced"] is True, "not checked"
    )
    print(
        f"   day {day['business_day']} closed (日终轧帐): opening "
        f"{format_fen(int(str(day['opening_float_fen'])))} + deposits "
        f"{format_fen(int(str(day['deposits_fen'])))} - debits "
        f"{format_fen(int(str(day['debits_fen'])))} = "
        f"{format_fen(int(str(day['closing_float_fen'])))}; the platform says "
        f"{format_fen(int(str(day['platform_float_fen'])))}: {verdict}"
    )
    if closed.printed:
        sheet = sims.printer.printed_receipts(f"day-sheet/{day['business_day']}/0")[-1]
        print("   " + "\n   ".join(sheet.splitlines()[:-2]))
    services = day["services"]
    catalog = terminal.catalog()
    statement = commission_statement(
        lambda code: catalog.services[code].commission if code in catalog.services else (),
        [(date.fromisoformat(str(day["business_day"])), services)],  # type: ignore[list-item]
    )
    print(
        f"5. Commission earned today (the back office's monthly statement adds up the month): "
        f"{format_fen(statement.split.total_fen)}, station's 7/10 "
        f"{format_fen(statement.split.station_fen)}, post's 3/10 "
        f"{format_fen(statement.split.post_fen)}"
    )
    operator_logs_out(terminal, sims)


def residents(terminal: Terminal, sims: SimulatedDevices, receipts: Path) -> str | None:
    """The three residents; the voucher id of the phone top-up's surplus."""
    cash, cards = sims.cash, sims.cards
    catalog = terminal.catalog()
    rng = random.Random(2026)

    water = catalog.service("water-bill")
    quote = terminal.quote_bill("water-bill", valid_account(water, rng))
    print(
        f"1. Water bill {quote.bill.period} for {quote.bill.holder_masked}: "
        f"due {format_fen(quote.bill.amount_due_fen)}, fee {format_fen(quote.fee_fen)}"
    )
    progress = terminal.pay_bill(quote)
    while progress.still_due_fen:
        cash.insert("note", 100_00 if progress.still_due_fen > 50_00 else 50_00)
        progress = terminal.collect(progress.tx_id)
        print(
            f"   inserted {format_fen(progress.cash_in_fen)}, "
            f"still due {format_fen(progress.still_due_fen)}"
        )
    show(terminal.finish(progress.tx_id), receipts)

    print("2. Phone top-up of ¥30.00 for 138****8000, paid with a ¥50 note")
    progress = terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    cash.insert("note", 50_00)
    terminal.collect(progress.tx_id)
    topup = terminal.finish(progress.tx_id)
    show(topup, receipts)
    voucher = None if topup.record is None else topup.record.get("voucher_id")

    card_service = catalog.service("power-card")
    card_no = valid_account(card_service, rng)
    if not cards.has_card(card_no):
        cards.create_card(card_no, "electricity", "M000042")
    cards.remove_card()
    cards.insert_card(card_no)
    print(
        f"3. Electricity card {card_no[:2]}******{card_no[-4:]}: top-up ¥100.00; "
        "the card is pulled out while it is being written"
    )
    progress = terminal.start_card_topup("power-card", 100_00)
    cash.insert("note", 100_00)
    terminal.collect(progress.tx_id)
    cards.pull_during_next_command(after_apply=False)
    show(terminal.finish(progress.tx_id), receipts)
    cards.insert_card(card_no)
    done = terminal.card_inserted()
    card = cards.read_prepaid()
    print(
        f"   the same card came back: credit written for {done}; "
        f"card counter {card.purchase_counter}, last credit {format_fen(card.last_credit_fen)}"
    )
    cards.remove_card()
    return None if voucher is None else str(voucher)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var/demo"))
    parser.add_argument("--serve", action="store_true", help="keep the terminal running")
    args = parser.parse_args(argv)
    data: Path = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    # Imported here: the touchscreen app imports this module for demo_config and demo_signer
    # and would otherwise carry the simulator's code while it runs elsewhere.
    from simulators.platform.server import PlatformSimulator

    # The platform confirms deposits as the operator's back office does: after the fact.
    platform = PlatformSimulator(data / "platform.sqlite3")
    platform.start()
    config = demo_config(data, platform.url)
    signer = demo_signer(config)
    terminal, sims = build_terminal(config, signer=signer)
    try:
        recovered = terminal.start()
        print(
            f"Terminal {TERMINAL} of {NAME} ({STATION}) in service; platform simulator at "
            f"{platform.url}; {len(recovered)} transaction(s) recovered; data in {data}"
        )
        buy_float(terminal, sims, platform)
        voucher = residents(terminal, sims, data / "receipts")
        operators_evening(terminal, sims, voucher)
        export = data / "journal.jsonl"
        with export.open("w", encoding="utf-8") as out:
            terminal.export_journal(out)
        with export.open(encoding="utf-8") as lines:
            check = verify_jsonl(lines, signer.certificate_pem())
        print(
            f"Journal {export}: {'sound' if check.ok else 'UNSOUND'}, {check.records} records"
            + (f" ({check.problem})" if not check.ok else "")
        )
        for warning in check.warnings[:3]:
            print(f"   note: {warning}")
        print(f"Receipts: {data / 'receipts'}  Certificate: {config.token.cert_file}")
        if args.serve:
            print("Serving; Ctrl-C to stop.")
            while True:
                terminal.drain_cash()
                terminal.tick()
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        terminal.close()
        platform.stop()
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
