"""What a receipt says, taken from the signed tx_close journal record and nothing else.

Owns the Receipt value and its extraction from a record, and StationInfo, what every
printed slip says about the station (from the configuration). A receipt never holds a
figure that is not in the record, so what is printed is what was signed. It never prints.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from kiosk.errors import KioskError
from kiosk.journal.record_types import RecordType


class ReceiptError(KioskError):
    """A receipt cannot be made from a record; the message names the field."""


@dataclass(frozen=True)
class StationInfo:
    """The station as receipts and slips print it: its name, where it is, whom to call."""

    name: str
    address: str = ""
    phone: str = ""  # the station's own telephone
    hotline: str = ""  # the operator's help hotline (服务热线)

    @classmethod
    def from_config(cls, station: Any) -> "StationInfo":
        """From the configuration's [station] table (kiosk.config.StationConfig)."""
        return cls(
            name=str(station.name),
            address=str(getattr(station, "address", "")),
            phone=str(getattr(station, "phone", "")),
            hotline=str(getattr(station, "hotline", "")),
        )


@dataclass(frozen=True)
class Receipt:
    station: str  # the 机构号, as journaled
    station_info: StationInfo
    terminal: str
    receipt_no: str
    time: str  # ISO 8601 with offset, as journaled
    service: str
    service_name: str
    account_masked: str
    amount_fen: int
    fee_fen: int
    cash_in_fen: int
    voucher_fen: int
    credited_fen: int
    platform_ref: str | None
    outcome: str
    signed: bool
    sig_failed: bool = False  # closed during a signature device outage
    tx_id: str = ""
    seq: int = 0
    kind: str | None = None
    card_no_masked: str | None = None
    card_credit: str | None = None  # "written" or "pending"
    reason: str | None = None  # why a transaction did not complete
    voucher_id: str | None = None  # single-use money's own id, when voucher_fen > 0
    voucher_expires: str | None = None  # ISO date
    # Paid by phone (payment_method "qr"): the wallet, the provider's reference, what the
    # order took and what went back to the wallet.
    payment_method: str = "cash"
    paid_with: str | None = None
    provider_ref: str | None = None
    paid_in_fen: int = 0
    refunded_fen: int = 0

    @property
    def station_name(self) -> str:
        return self.station_info.name

    @property
    def total_fen(self) -> int:
        """What the resident owed: the amount plus the fee."""
        return self.amount_fen + self.fee_fen


def _text(record: Mapping[str, object], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise ReceiptError(f"tx_close record has no text field {key!r}: it cannot be a receipt")
    return value


def _optional_text(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ReceiptError(f"tx_close record field {key!r} must be text or null, not {value!r}")
    return value


def _fen(record: Mapping[str, object], key: str, *, required: bool = True) -> int:
    value = record.get(key, None if required else 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReceiptError(f"tx_close record field {key!r} must be whole fen, not {value!r}")
    return value


def _optional_date(record: Mapping[str, object], key: str) -> str | None:
    value = _optional_text(record, key)
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ReceiptError(
                f"tx_close record field {key!r} must be a date (YYYY-MM-DD), not {value!r}"
            ) from None
    return value


def receipt_from_record(
    record: Mapping[str, object],
    *,
    service_name: str,
    station_name: str | None = None,
    station: StationInfo | None = None,
) -> Receipt:
    """The receipt of a closed transaction; ReceiptError if record is not a usable tx_close.

    station: the station as configured (name, address, phone, hotline); station_name alone
    is the older form and prints no address, phone or hotline.
    """
    if record.get("type") != RecordType.TX_CLOSE:
        raise ReceiptError(
            f"a receipt is made from a tx_close record, not from {record.get('type')!r}"
        )
    if station is None:
        if station_name is None:
            raise ReceiptError("a receipt needs the station: give station=StationInfo(...)")
        station = StationInfo(station_name)
    seq = record.get("seq")
    return Receipt(
        station=_text(record, "station"),
        station_info=station,
        terminal=_text(record, "terminal"),
        receipt_no=_text(record, "receipt_no"),
        time=_text(record, "time"),
        service=_text(record, "service"),
        service_name=service_name,
        account_masked=_text(record, "account_masked"),
        amount_fen=_fen(record, "amount_fen"),
        fee_fen=_fen(record, "fee_fen"),
        cash_in_fen=_fen(record, "cash_in_fen"),
        voucher_fen=_fen(record, "voucher_fen"),
        credited_fen=_fen(record, "credited_fen", required=False),
        platform_ref=_optional_text(record, "platform_ref"),
        outcome=_text(record, "outcome"),
        signed=isinstance(record.get("sig"), str),
        sig_failed=record.get("sig_failed") is True,
        tx_id=_text(record, "tx_id"),
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        kind=_optional_text(record, "kind"),
        card_no_masked=_optional_text(record, "card_no_masked"),
        card_credit=_optional_text(record, "card_credit"),
        reason=_optional_text(record, "reason"),
        voucher_id=_optional_text(record, "voucher_id"),
        voucher_expires=_optional_date(record, "voucher_expires"),
        payment_method=_optional_text(record, "payment_method") or "cash",
        paid_with=_optional_text(record, "paid_with"),
        provider_ref=_optional_text(record, "provider_ref"),
        paid_in_fen=_fen(record, "paid_in_fen", required=False),
        refunded_fen=_fen(record, "refunded_fen", required=False),
    )
