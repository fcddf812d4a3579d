"""`make demo`: the terminal on embedded defaults, headless, with everything simulated.

Starts the platform simulator on a loopback port, makes a demo station identity (a
software key: every record it signs says so), builds the real terminal core on simulated
devices under var/demo/, and walks three residents through it: a water bill paid with an
overpayment credited, a phone top-up whose surplus becomes a voucher, and an electricity
card top-up whose card is pulled mid-credit and completed when it comes back. Then it
closes the business day, verifies the journal and says where everything is.
With --serve it keeps the terminal running (Ctrl-C to stop).
"""

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.catalog.sample_accounts import valid_account
from kiosk.composition import SimulatedDevices, build_terminal
from kiosk.config import Config, parse_config
from kiosk.journal import export_jsonl, verify_jsonl
from kiosk.money import format_fen
from kiosk.terminal import Terminal
from kiosk.transactions.engine import Outcome

STATION = "33078200001"
TERMINAL = "T0001"
NAME = "青山社区便民服务站"


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


def residents(terminal: Terminal, sims: SimulatedDevices, receipts: Path) -> None:
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
    show(terminal.finish(progress.tx_id), receipts)

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
    done = terminal.engine.card_inserted()
    card = cards.read_prepaid()
    print(
        f"   the same card came back: credit written for {done}; "
        f"card counter {card.purchase_counter}, last credit {format_fen(card.last_credit_fen)}"
    )
    cards.remove_card()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var/demo"))
    parser.add_argument("--serve", action="store_true", help="keep the terminal running")
    args = parser.parse_args(argv)
    data: Path = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    # Imported here: the touchscreen app imports this module for demo_config and demo_signer
    # and would otherwise carry the simulator's code while it runs elsewhere.
    from platform_sim.server import PlatformSimulator

    platform = PlatformSimulator(data / "platform.sqlite3", auto_confirm_deposits=True)
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
        residents(terminal, sims, data / "receipts")
        report = terminal.close_day()
        print(
            f"Business day {report['business_day']} closed: {report['paid_count']} paid, "
            f"cash in box {format_fen(int(str(report['cash_expected_fen'])))}, "
            f"vouchers {format_fen(int(str(report['voucher_fen'])))}"
        )
        export = data / "journal.jsonl"
        with export.open("w", encoding="utf-8") as out:
            export_jsonl(terminal.conn, out)
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
                terminal.engine.drain_cash()
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
