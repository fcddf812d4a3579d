"""The monthly commission statement per station (运营商酬金结算单), and its export.

Owns the back office's part of seed 002's commission: which days count (the station's
terminals' signed `day_close` reports of the month, their `services`), which terms apply
(the signed catalog's per-service commission rules: kiosk.catalog.commission does the
arithmetic), the post : station split of the station's agreement (backoffice.stations;
3 : 7 by default), the tax withheld from the station's share at the configured rate, the
listing and payment dates (15th and 20th of the following month) and the payee account
(绿卡). Exported as CSV in UTF-8 with a byte-order mark (Excel opens it as UTF-8), with
Chinese headers and money in 元 with two decimals. Amounts are integer fen throughout.
"""

import csv
import datetime
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backoffice.config import BackofficeConfig, CommissionConfig
from backoffice.errors import BackofficeError
from backoffice.reports import spreadsheet_text
from backoffice.stations import month_bounds
from backoffice.store import Store
from kiosk.catalog.commission import CommissionLine, CommissionRule, commission_statement
from kiosk.catalog.model import Catalog, CatalogError
from kiosk.catalog.store import (
    load_signed_catalog,
    shipped_catalog_files,
    shipped_operator_public_pem,
)
from kiosk.i18n import translator
from kiosk.journal.record_types import RecordType

_BASIS_POINTS = 10_000


def load_commission_catalog(config: CommissionConfig) -> Catalog:
    """The signed catalog whose commission terms the statements use (verified); a
    BackofficeError saying which file is wrong otherwise."""
    if not config.catalog_file:
        data, sig = shipped_catalog_files()
        public = shipped_operator_public_pem()
    else:
        try:
            data = Path(config.catalog_file).read_bytes()
            sig = Path(config.catalog_sig_file or config.catalog_file + ".sig").read_bytes()
            public = Path(config.operator_public_key_file).read_bytes()
        except OSError as exc:
            raise BackofficeError(
                f"cannot read the commission catalog ({exc}): check commission.catalog_file, "
                "catalog_sig_file and operator_public_key_file"
            ) from None
    try:
        return load_signed_catalog(data, sig, public)
    except CatalogError as exc:
        raise BackofficeError(f"the commission catalog is refused: {exc}") from None


def split(total_fen: int, post_share: int, station_share: int) -> tuple[int, int]:
    """(post, station) shares of a commission. The station's is rounded down to the fen and
    the post keeps the remainder, so they add up exactly: kiosk.catalog.commission's rule
    (split_commission), which is fixed at 3 : 7, for the share a station's agreement says."""
    station = total_fen * station_share // (post_share + station_share)
    return total_fen - station, station


def tax_of(amount_fen: int, rate_bp: int) -> int:
    """Tax at rate_bp basis points of amount_fen, a fraction of a fen rounded half up."""
    return (2 * amount_fen * rate_bp + _BASIS_POINTS) // (2 * _BASIS_POINTS)


@dataclass(frozen=True)
class StationStatement:
    station: str
    station_name: str
    month: str
    lines: tuple[CommissionLine, ...]
    uncovered: tuple[str, ...]  # services paid on days without commission terms
    day_closes: int  # the day_close reports the statement is built from
    # (terminal, business day) with paid transactions received but no day close: their
    # business earns nothing on this statement until the terminal's report arrives.
    days_without_close: tuple[tuple[str, str], ...]
    total_fen: int
    post_share: int
    station_share: int
    post_fen: int
    station_fen: int
    tax_rate_bp: int
    tax_fen: int
    payable_fen: int  # the station's share after tax: what is paid into the payee account
    listing_date: datetime.date
    payment_date: datetime.date
    payee_name: str
    payee_account: str
    # Each service's name (its English message id; Chinese in catalog.po).
    service_names: Mapping[str, str] = field(default_factory=dict)


def statement(
    store: Store, catalog: Catalog, config: BackofficeConfig, station: str, month: str
) -> StationStatement:
    """The commission statement of one station for one month, from its terminals' signed
    day closes (each business day under the terms in force that day)."""
    first, last = month_bounds(month)
    rows = store.query(
        "SELECT terminal, business_day, record FROM records WHERE type = ? AND station = ? "
        "AND business_day >= ? AND business_day <= ? ORDER BY business_day, terminal",
        (RecordType.DAY_CLOSE, station, first.isoformat(), last.isoformat()),
    )
    days = []
    for row in rows:
        services = json.loads(row["record"]).get("services") or {}
        days.append((datetime.date.fromisoformat(row["business_day"]), services))
    closed = {(row["terminal"], row["business_day"]) for row in rows}
    with_business = store.query(
        "SELECT DISTINCT terminal, business_day FROM records WHERE type = ? AND outcome = ? "
        "AND station = ? AND business_day >= ? AND business_day <= ?",
        (RecordType.TX_CLOSE, "paid", station, first.isoformat(), last.isoformat()),
    )
    unclosed = sorted(
        {(r["terminal"], r["business_day"]) for r in with_business} - closed,
        key=lambda pair: (pair[1], pair[0]),
    )

    def rules_of(code: str) -> tuple[CommissionRule, ...]:
        found = catalog.services.get(code)
        return () if found is None else found.commission

    result = commission_statement(rules_of, days)
    registered = store.query("SELECT * FROM stations WHERE station = ?", (station,))
    entry = registered[0] if registered else {}
    post_share = entry.get("post_share")
    station_share = entry.get("station_share")
    if post_share is None or station_share is None:
        post_share = config.reports.commission_operator
        station_share = config.reports.commission_station
    total = result.split.total_fen
    post_fen, station_fen = split(total, int(post_share), int(station_share))
    rate = config.commission.tax_rate_bp
    tax = tax_of(station_fen, rate)
    following = last + datetime.timedelta(days=1)
    return StationStatement(
        station=station,
        station_name=str(entry.get("name") or ""),
        month=month,
        lines=result.lines,
        uncovered=result.uncovered,
        day_closes=len(rows),
        days_without_close=tuple(unclosed),
        total_fen=total,
        post_share=int(post_share),
        station_share=int(station_share),
        post_fen=post_fen,
        station_fen=station_fen,
        tax_rate_bp=rate,
        tax_fen=tax,
        payable_fen=station_fen - tax,
        listing_date=following.replace(day=config.commission.listing_day),
        payment_date=following.replace(day=config.commission.payment_day),
        payee_name=str(entry.get("payee_name") or ""),
        payee_account=str(entry.get("payee_account") or ""),
        service_names={
            code: catalog.services[code].name
            for code in {line.service for line in result.lines}
            if code in catalog.services
        },
    )


def stations_of_month(store: Store, month: str) -> list[str]:
    """The stations with a day close in the month, and every active registered station."""
    first, last = month_bounds(month)
    rows = store.query(
        "SELECT DISTINCT station FROM records WHERE type = ? AND business_day >= ? "
        "AND business_day <= ? UNION SELECT station FROM stations WHERE status = 'active' "
        "AND joined <= ?",
        (RecordType.DAY_CLOSE, first.isoformat(), last.isoformat(), last.isoformat()),
    )
    return sorted(row["station"] for row in rows)


def summary_row(each: StationStatement) -> dict[str, object]:
    """One flat row of a statement (the dashboard's report list, the CLI's --json)."""
    return {
        "station": each.station,
        "month": each.month,
        "day_closes": each.day_closes,
        "days_without_day_close": len(each.days_without_close),
        "commission_fen": each.total_fen,
        "split": f"{each.post_share}:{each.station_share}",
        "post_fen": each.post_fen,
        "station_fen": each.station_fen,
        "tax_fen": each.tax_fen,
        "payable_fen": each.payable_fen,
        "listing_date": each.listing_date.isoformat(),
        "payment_date": each.payment_date.isoformat(),
        "payee_account": each.payee_account,
        "uncovered": " ".join(each.uncovered),
    }


def yuan_text(fen: int) -> str:
    """Money as 元 with two decimals and no grouping, as a spreadsheet reads a number."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def rate_text(rule: CommissionRule) -> str:
    """The rule's terms as the statement prints them (Chinese: it is a Chinese document)."""
    if rule.basis == "per_transaction":
        return f"每笔 {yuan_text(rule.fen)} 元"
    return f"交易额的 {rule.per_mille_text}‰"


# The statement's columns: header (Chinese: staff open it in a Chinese spreadsheet).
CSV_HEADERS = (
    "网点编号",
    "网点名称",
    "结算月份",
    "业务",
    "业务代码",
    "酬金标准",
    "生效日期",
    "笔数",
    "交易金额(元)",
    "酬金(元)",
)
CSV_TOTALS = (
    "酬金合计(元)",
    "邮政分成(元)",
    "网点分成(元)",
    "分成比例(邮政:网点)",
    "代扣税率(%)",
    "代扣税额(元)",
    "实付网点(元)",
    "列账日期",
    "付款日期",
    "收款人",
    "收款账号(绿卡)",
)


def to_csv(statements: Sequence[StationStatement]) -> bytes:
    """The statements as one CSV: a row per service and rule of each station, then the
    station's totals under their own headers. UTF-8 with a byte-order mark, so a
    spreadsheet opened by double-click reads the Chinese right; money in 元 with two
    decimals. Text staff typed (names) is kept from being read as a formula; the payee
    account (digits only, checked at registration) is written as ="…" so a spreadsheet keeps
    all its digits instead of showing a 19-digit number in exponent form."""
    chinese = translator("zh_CN")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for each in statements:
        writer.writerow(CSV_HEADERS)
        for line in each.lines:
            writer.writerow(
                (
                    each.station,
                    _text(each.station_name),
                    each.month,
                    chinese(each.service_names.get(line.service, line.service)),
                    _text(line.service),
                    rate_text(line.rule),
                    line.rule.effective_from.isoformat(),
                    line.count,
                    yuan_text(line.amount_fen),
                    yuan_text(line.commission_fen),
                )
            )
        for code in each.uncovered:
            writer.writerow(
                (each.station, _text(each.station_name), each.month, code, "无酬金标准")
            )
        writer.writerow(CSV_TOTALS)
        writer.writerow(
            (
                yuan_text(each.total_fen),
                yuan_text(each.post_fen),
                yuan_text(each.station_fen),
                f"{each.post_share}:{each.station_share}",
                f"{each.tax_rate_bp // 100}.{each.tax_rate_bp % 100:02d}",
                yuan_text(each.tax_fen),
                yuan_text(each.payable_fen),
                each.listing_date.isoformat(),
                each.payment_date.isoformat(),
                _text(each.payee_name),
                f'="{each.payee_account}"' if each.payee_account else "",
            )
        )
        writer.writerow(())
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _text(value: str) -> str:
    """Typed text kept from being read as a formula (one rule for every CSV)."""
    return spreadsheet_text(value)
