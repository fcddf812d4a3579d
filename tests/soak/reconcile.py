"""The soak's books, checked automatically after the settle phase (issue 16).

Pure: it reads what the settle phase gathered (the terminal's journal records, the
platform's dump, the cards' state, the loads made elsewhere, the voucher redemptions, the
cash acceptor's events) and returns what it checked and every discrepancy, each one line
naming the transaction, card or voucher. Nothing here trusts the terminal's own tables:
the journal is what an auditor has, the platform's ledger and the cards are the other
sides of the money.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.soak.ledger import ElsewhereLoad

Record = Mapping[str, Any]

# The check a card_credit_conflict record fails when the card holds the very credit.
CONFLICT_FOR_A_HELD_CREDIT = "no conflict for a credit the card holds"


@dataclass(frozen=True)
class CardState:
    card_no: str
    balance_fen: int
    purchase_counter: int
    load_log: tuple[
        tuple[int, int, str, str], ...
    ]  # (counter, amount, terminal, ref), newest first


@dataclass(frozen=True)
class Redemption:
    """What paying a voucher out twice answered: the terminal's payout, then another key."""

    voucher_id: str
    amount_fen: int
    first_paid: bool
    first_problem: str  # "" when paid
    second_refusal: str | None  # the platform's refusal code; None: it paid again (!)
    paid_during_soak: bool = False  # the operator paid it out while the faults were on


@dataclass
class Books:
    """Everything the reconciliation reads."""

    terminal_id: str
    station: str
    opening_float_fen: int
    records: Sequence[Record]
    dump: Mapping[str, Any]
    cards: Sequence[CardState]
    elsewhere: Sequence[ElsewhereLoad]
    redemptions: Sequence[Redemption]
    acceptor_events: Sequence[tuple[str, int, bool]]  # (event id, value, acknowledged)
    acceptor_counted: int  # every note and coin the acceptor ever counted
    still_open: Mapping[str, int]  # open transactions, retries, holds, pending card credits


@dataclass
class Reconciliation:
    checks: Counter[str] = field(default_factory=Counter)  # items checked, by check
    discrepancies: list[str] = field(default_factory=list)
    facts: Counter[str] = field(default_factory=Counter)  # what the books showed

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def check(self, name: str, sound: bool, problem: str) -> None:
        self.checks[name] += 1
        if not sound:
            self.discrepancies.append(f"{name}: {problem}")


def post_key(tx_id: str) -> str:
    return f"{tx_id}-p"


def reconcile(books: Books) -> Reconciliation:
    result = Reconciliation()
    closes = [r for r in books.records if r["type"] == "tx_close"]
    payments = [p for p in books.dump["payments"] if p["terminal"] == books.terminal_id]
    for outcome, n in Counter(str(c["outcome"]) for c in closes).items():
        result.facts[f"closes {outcome}"] += n
    for record in books.records:
        if record["type"] == "alert":
            result.facts[f"alerts {record['alert']}"] += 1
    check_settled(books, result)
    check_posted_once(closes, payments, result)
    check_conservation(closes, payments, result)
    check_orders(books, closes, payments, result)
    check_cash(books, closes, result)
    check_holds(books, result)
    check_float(books, payments, result)
    check_cards(books, payments, result)
    check_vouchers(books, closes, result)
    return result


def check_settled(books: Books, result: Reconciliation) -> None:
    for what, n in sorted(books.still_open.items()):
        result.check("nothing left open", n == 0, f"{n} {what} after the settle phase")


def check_posted_once(
    closes: Sequence[Record], payments: Sequence[Record], result: Reconciliation
) -> None:
    """Every payment the platform posted is exactly one paid tx_close with the same money."""
    closes_of: dict[str, list[Record]] = {}
    for close in closes:
        closes_of.setdefault(str(close["tx_id"]), []).append(close)
    for tx_id, found in closes_of.items():
        result.check("closed once", len(found) == 1, f"{tx_id} has {len(found)} tx_close records")
    posted = {str(p["key"]): p for p in payments if p["state"] == "posted"}
    result.facts["platform payments posted"] = len(posted)
    result.facts["platform payments reversed"] = sum(p["state"] == "reversed" for p in payments)
    for key, payment in posted.items():
        tx_id = key.removesuffix("-p")
        paid = [c for c in closes_of.get(tx_id, []) if c["outcome"] == "paid"]
        if len(paid) != 1:
            result.check(
                "posted = one paid close",
                False,
                f"{key} posted {payment['amount_fen']} fen but {len(paid)} paid closes",
            )
            continue
        close = paid[0]
        same = (
            close["amount_fen"] == payment["amount_fen"]
            and close["fee_fen"] == payment["fee_fen"]
            and close["platform_ref"] == payment["reference"]
        )
        result.check(
            "posted = one paid close",
            same,
            f"{tx_id} closed paid {close['amount_fen']}+{close['fee_fen']} fen ref "
            f"{close['platform_ref']}, the platform posted {payment['amount_fen']}+"
            f"{payment['fee_fen']} fen ref {payment['reference']}",
        )
    for close in closes:
        if close["outcome"] == "paid":
            key = post_key(str(close["tx_id"]))
            result.check(
                "paid close = posted", key in posted, f"{close['tx_id']} closed paid, not posted"
            )


def check_conservation(
    closes: Sequence[Record], payments: Sequence[Record], result: Reconciliation
) -> None:
    """paid: cash in = amount + fee + voucher; not paid: voucher = cash in, nothing posted."""
    posted = {str(p["key"]) for p in payments if p["state"] == "posted"}
    for close in closes:
        tx_id, cash_in = close["tx_id"], close["cash_in_fen"]
        if close.get("payment_method") == "qr":
            check_qr_conservation(close, posted, result)
            continue
        if close["outcome"] == "paid":
            settled = close["amount_fen"] + close["fee_fen"] + close["voucher_fen"]
            result.check(
                "money conserved (paid)",
                cash_in == settled and close["credited_fen"] <= close["amount_fen"],
                f"{tx_id}: cash in {cash_in} fen, amount {close['amount_fen']} (credited "
                f"{close['credited_fen']}) + fee {close['fee_fen']} + voucher "
                f"{close['voucher_fen']}",
            )
        else:
            result.check(
                "money conserved (not paid)",
                close["voucher_fen"] == cash_in
                and close["amount_fen"] == 0
                and post_key(str(tx_id)) not in posted,
                f"{tx_id} closed {close['outcome']}: cash in {cash_in} fen, voucher "
                f"{close['voucher_fen']}, amount {close['amount_fen']}, posted: "
                f"{post_key(str(tx_id)) in posted}",
            )
        if close["voucher_fen"]:
            result.facts["vouchers issued"] += 1
        if close.get("credited_fen"):
            result.facts["overpayments credited"] += 1


def check_qr_conservation(close: Record, posted: set[str], result: Reconciliation) -> None:
    """Paid by phone: no cash, never a voucher; paid: what the order took is amount + fee;
    not paid: all of it went back to the wallet, nothing posted."""
    tx_id = str(close["tx_id"])
    no_cash = close["cash_in_fen"] == 0 and close["voucher_fen"] == 0
    result.check(
        "no QR close has cash or a voucher",
        no_cash and "voucher_id" not in close,
        f"{tx_id} paid by phone closed with cash {close['cash_in_fen']} fen, voucher "
        f"{close['voucher_fen']} fen",
    )
    if close["outcome"] == "paid":
        result.check(
            "money conserved (QR paid)",
            close["paid_in_fen"] == close["amount_fen"] + close["fee_fen"]
            and close["refunded_fen"] == 0,
            f"{tx_id}: the order took {close['paid_in_fen']} fen, amount {close['amount_fen']} "
            f"+ fee {close['fee_fen']}, refunded {close['refunded_fen']}",
        )
    else:
        result.check(
            "money conserved (QR not paid)",
            close["refunded_fen"] == close["paid_in_fen"]
            and close["amount_fen"] == 0
            and post_key(tx_id) not in posted,
            f"{tx_id} closed {close['outcome']}: the order took {close['paid_in_fen']} fen, "
            f"refunded {close['refunded_fen']}, amount {close['amount_fen']}, posted: "
            f"{post_key(tx_id) in posted}",
        )
    result.facts[f"QR closes {close['outcome']}"] += 1


def check_orders(
    books: Books, closes: Sequence[Record], payments: Sequence[Record], result: Reconciliation
) -> None:
    """Every order the platform marks paid is exactly one paid close of the same money (the
    posting it funds) or one refunded close; every closed order a cancelled close with no
    money; the platform's refunds are exactly the refunded closes."""
    book = books.dump.get("payment_orders", {"orders": [], "refunds": []})
    orders = [o for o in book["orders"] if o["terminal"] == books.terminal_id]
    refunds = [
        r for r in book["refunds"] if r["terminal"] == books.terminal_id and not r["automatic"]
    ]
    closes_of: dict[str, list[Record]] = {}
    for close in closes:
        closes_of.setdefault(str(close["tx_id"]), []).append(close)
    funding = {str(p["order_key"]): p for p in payments if p.get("order_key")}
    for order in orders:
        key, state = str(order["key"]), str(order["state"])
        result.facts[f"orders {state}"] += 1
        tx_id = key.removesuffix("-o")
        found = closes_of.get(tx_id, [])
        outcome = str(found[0]["outcome"]) if len(found) == 1 else None
        single = found[0] if len(found) == 1 else None
        if state == "paid":
            posting = funding.get(key)
            sound = (
                single is not None
                and outcome == "paid"
                and single["paid_in_fen"] == order["amount_fen"]
                and single["paid_with"] == order["paid_with"]
                and single["provider_ref"] == order["provider_ref"]
                and posting is not None
                and posting["state"] == "posted"
                and order["used_by"] == posting["key"]
            )
            result.check(
                "paid order = one paid close",
                sound,
                f"order {key} paid {order['amount_fen']} fen by {order['paid_with']}: closes "
                f"{[c['outcome'] for c in found]}, posting "
                f"{None if posting is None else posting['state']}",
            )
        elif state == "refunded":
            sound = (
                single is not None
                and outcome == "refunded"
                and single["refunded_fen"] == order["amount_fen"]
                and single["paid_with"] == order["paid_with"]
            )
            result.check(
                "refunded order = one refunded close",
                sound,
                f"order {key} refunded {order['amount_fen']} fen: closes "
                f"{[(c['outcome'], c.get('refunded_fen')) for c in found]}",
            )
        elif state == "closed":
            sound = (
                single is not None
                and outcome in ("cancelled", "refused")
                and single["paid_in_fen"] == 0
                and single["amount_fen"] == 0
            )
            result.check(
                "closed order = one cancelled close with no money",
                sound,
                f"order {key} closed ({order['closed_reason']}): closes "
                f"{[(c['outcome'], c.get('paid_in_fen')) for c in found]}",
            )
        else:
            result.check("no order left open", False, f"order {key} is still {state}")
    succeeded = {str(r["order_key"]): r for r in refunds if r["state"] == "succeeded"}
    refunded_closes = [c for c in closes if c["outcome"] == "refunded"]
    for close in refunded_closes:
        refund = succeeded.get(f"{close['tx_id']}-o")
        result.check(
            "refunded close = one platform refund",
            refund is not None
            and refund["amount_fen"] == close["refunded_fen"]
            and refund["method"] == close["paid_with"],
            f"{close['tx_id']} closed refunded {close['refunded_fen']} fen to "
            f"{close['paid_with']}: platform refund {refund}",
        )
    result.check(
        "refunded close = one platform refund",
        len(succeeded) == len(refunded_closes),
        f"the platform refunded {len(succeeded)} orders, {len(refunded_closes)} closes say so",
    )
    result.facts["platform refunds failed (retried)"] = sum(r["state"] == "failed" for r in refunds)


def check_cash(books: Books, closes: Sequence[Record], result: Reconciliation) -> None:
    """Every note and coin the acceptor counted is journaled once, in the close of its tx."""
    cash_in = [r for r in books.records if r["type"] == "cash_in"]
    journaled: dict[str, Record] = {}
    for record in cash_in:
        event_id = str(record["event_id"])
        result.check("cash counted once", event_id not in journaled, f"{event_id} twice")
        journaled[event_id] = record
    for event_id, value, acknowledged in books.acceptor_events:
        found = journaled.get(event_id)
        result.check(
            "acceptor cash journaled",
            acknowledged and found is not None and found["value_fen"] == value,
            f"{event_id} ({value} fen) acknowledged={acknowledged}, journaled="
            f"{None if found is None else found['value_fen']}",
        )
    result.check(
        "acceptor cash journaled",
        len(journaled) == books.acceptor_counted,
        f"the acceptor counted {books.acceptor_counted} items, the journal has {len(journaled)}",
    )
    by_tx = Counter[str]()
    for record in cash_in:
        by_tx[str(record["tx_id"])] += int(record["value_fen"])
    for close in closes:
        result.check(
            "close counts its cash",
            close["cash_in_fen"] == by_tx[str(close["tx_id"])],
            f"{close['tx_id']} closed with {close['cash_in_fen']} fen, its cash_in records "
            f"hold {by_tx[str(close['tx_id'])]}",
        )
    result.facts["cash in (fen)"] = sum(by_tx.values())


def check_holds(books: Books, result: Reconciliation) -> None:
    holds = [h for h in books.dump["holds"] if h["station"] == books.station]
    for hold in holds:
        result.facts[f"holds {hold['state']}"] += 1
        result.check(
            "no hold left held",
            hold["state"] != "active",
            f"hold {hold['hold_id']} of {hold['amount_fen']} fen still active",
        )


def check_float(books: Books, payments: Sequence[Record], result: Reconciliation) -> None:
    [station] = [s for s in books.dump["stations"] if s["station"] == books.station]
    debited = sum(
        p["amount_fen"] + p["fee_fen"]
        for p in payments
        if p["state"] == "posted" and not p.get("order_key")  # an order paid, not the float
    )
    expected = books.opening_float_fen - debited
    result.check(
        "float = opening - posted",
        station["balance_fen"] == expected and station["held_fen"] == 0,
        f"balance {station['balance_fen']} fen (held {station['held_fen']}), expected "
        f"{expected} from the posted payments",
    )


def check_cards(books: Books, payments: Sequence[Record], result: Reconciliation) -> None:
    """Each card holds what the platform credited to it (less the conflicts) plus what was
    loaded elsewhere; a conflict is exactly a credit the card does not hold, alerted."""
    conflicts = {str(r["tx_id"]) for r in books.records if r["type"] == "card_credit_conflict"}
    conflict_alerts = {
        str(r["tx_id"])
        for r in books.records
        if r["type"] == "alert" and r.get("alert") == "card_credit_conflict"
    }
    written = {str(r["tx_id"]) for r in books.records if r["type"] == "card_credit_written"}
    credits = [p for p in payments if p["kind"] == "card_credit" and p["state"] == "posted"]
    for card in books.cards:
        own = [p for p in credits if p["account"] == card.card_no]
        loads = [e for e in books.elsewhere if e.card_no == card.card_no and e.state == "loaded"]
        elsewhere_at = {int(e.new_counter): e for e in loads if e.new_counter is not None}
        on_card: list[Record] = []
        for credit in own:
            tx_id = str(credit["key"]).removesuffix("-p")
            new_counter = int(credit["card_counter"]) + 1
            held = new_counter <= card.purchase_counter and new_counter not in elsewhere_at
            if held:
                on_card.append(credit)
                result.facts["card credits on the card"] += 1
                what = f"{tx_id}: credit of {credit['amount_fen']} fen for counter {new_counter}"
                if tx_id in conflicts:
                    result.check(
                        CONFLICT_FOR_A_HELD_CREDIT,
                        False,
                        f"{what} is on card {card.card_no} (its counter moved for it, not "
                        "for a load elsewhere), yet journaled a conflict: the operator would "
                        "refund money the card holds",
                    )
                else:
                    result.check(
                        "card credit on the card journaled written",
                        tx_id in written,
                        f"{what} is on card {card.card_no} but not journaled written",
                    )
            else:
                result.facts["card credits not on the card"] += 1
                result.check(
                    "conflict = credit not on the card",
                    tx_id in conflicts and tx_id in conflict_alerts and tx_id not in written,
                    f"{tx_id}: credit of {credit['amount_fen']} fen for counter {new_counter} is "
                    f"not on card {card.card_no} (counter {card.purchase_counter}) and "
                    f"conflict={tx_id in conflicts}, alerted={tx_id in conflict_alerts}, "
                    f"written={tx_id in written}",
                )
        claimed = Counter(int(p["card_counter"]) + 1 for p in on_card) + Counter(list(elsewhere_at))
        for counter in range(1, card.purchase_counter + 1):
            result.check(
                "every card load accounted for",
                claimed[counter] == 1,
                f"card {card.card_no}: counter {counter} moved by {claimed[counter]} known loads",
            )
        expected = sum(int(p["amount_fen"]) for p in on_card) + sum(
            e.amount_fen for e in elsewhere_at.values()
        )
        result.check(
            "card balance = credits held + loads elsewhere",
            card.balance_fen == expected,
            f"card {card.card_no} holds {card.balance_fen} fen, expected {expected}",
        )
        check_load_log(card, on_card, elsewhere_at, books.terminal_id, result)
    result.facts["card credit conflicts"] = len(conflicts)


def check_load_log(
    card: CardState,
    on_card: Iterable[Record],
    elsewhere_at: Mapping[int, ElsewhereLoad],
    terminal_id: str,
    result: Reconciliation,
) -> None:
    """The card's own log (its newest loads) names the very load the books put there."""
    ours = {int(p["card_counter"]) + 1: p for p in on_card}
    for counter, amount, terminal, ref in card.load_log:
        if counter in ours:
            credit = ours[counter]
            sound = (terminal, ref, amount) == (terminal_id, credit["key"], credit["amount_fen"])
        elif counter in elsewhere_at:
            load = elsewhere_at[counter]
            sound = (ref, amount) == (load.ref, load.amount_fen) and terminal != terminal_id
        else:
            sound = False
        result.check(
            "card load log agrees",
            sound,
            f"card {card.card_no}: log entry counter {counter} {amount} fen from {terminal} "
            f"ref {ref} is not the load the books put there",
        )


def check_vouchers(books: Books, closes: Sequence[Record], result: Reconciliation) -> None:
    """Every voucher is registered with its amount and redeemable exactly once."""
    issued = {str(c["voucher_id"]): c for c in closes if c.get("voucher_fen")}
    platform = {
        str(v["voucher_id"]): v
        for v in books.dump["vouchers"]
        if v["terminal"] == books.terminal_id
    }
    for voucher_id, close in issued.items():
        known = platform.get(voucher_id)
        result.check(
            "voucher registered",
            known is not None and known["amount_fen"] == close["voucher_fen"],
            f"{voucher_id} of {close['tx_id']} ({close['voucher_fen']} fen): platform has "
            f"{None if known is None else known['amount_fen']}",
        )
    for voucher_id in platform.keys() - issued.keys():
        result.check("voucher registered", False, f"{voucher_id} registered, in no tx_close")
    payouts = Counter(
        str(r["voucher_id"])
        for r in books.records
        if r["type"] == "voucher_payout" and r["state"] == "paid"
    )
    for voucher_id in issued:
        result.check(
            "voucher paid out at most once by the terminal",
            payouts[voucher_id] <= 1,
            f"{voucher_id}: {payouts[voucher_id]} voucher_payout records say paid",
        )
        known = platform.get(voucher_id)
        result.check(
            "voucher redeemed at the platform",
            known is not None and known["state"] == "redeemed",
            f"{voucher_id}: {None if known is None else known['state']} after the payouts",
        )
    result.facts["vouchers paid out during the soak"] = sum(
        r.paid_during_soak for r in books.redemptions
    )
    redeemed = {r.voucher_id: r for r in books.redemptions}
    for voucher_id, close in issued.items():
        redemption = redeemed.get(voucher_id)
        if redemption is None:
            result.check("voucher paid once", False, f"{voucher_id} was not tried")
            continue
        result.check(
            "voucher paid once",
            redemption.first_paid and redemption.amount_fen == close["voucher_fen"],
            f"{voucher_id} ({close['voucher_fen']} fen): first payout {redemption.first_problem}",
        )
        result.check(
            "voucher refused the second time",
            redemption.second_refusal == "voucher_already_redeemed",
            f"{voucher_id}: a second payout with another key answered "
            f"{redemption.second_refusal or 'paid'}",
        )
