"""Simulated terminals speaking the MQTT contract, with genuinely signed journal records.

Owns the terminal behaviour the back office needs for demos, tests and load: birth and
last will, heartbeats carrying the journal head, health, events, a resending outbox that
drops records only when acknowledged, and answers to signed commands. Faults are part of
it: paper running out, a low float, tamper, a device fault, abrupt death (the broker then
publishes the last will), a rollback to an older journal and a clone with another boot id.
Each terminal signs with drivers.token.software and journals with kiosk.journal, so its
records verify like a real terminal's. It is not the terminal's telemetry client.
"""

import json
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.commands import signature_valid
from backoffice.contract import topic_for
from backoffice.signatures import register_certificate
from backoffice.store import Store
from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.clock import SystemClock, iso
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.payment_codes import PaymentScheme
from kiosk.settlement.pay_methods import payment_method_split
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import PayMethod, TxOutcome

SERVICES = ("water", "electricity", "gas", "phone", "cable_tv")
SOFTWARE = "kiosk-terminal 0.1.0 (simulated)"
QR_SHARE = 3  # one payment in three is by phone
FIRMWARE = "ioboard 1.0 (simulated)"


class SimulatedTerminal:
    def __init__(
        self,
        work_dir: Path,
        *,
        station: str,
        terminal: str,
        host: str,
        port: int,
        command_public_key: ec.EllipticCurvePublicKey | None = None,
        signer: SoftwareSigner | None = None,
        seed: int | None = None,
    ) -> None:
        self.station, self.terminal = station, terminal
        self.host, self.port = host, port
        self.boot_id = uuid.uuid4().hex
        # The station's clock (Asia/Shanghai), as the terminal's journal keeps time.
        self.clock = SystemClock()
        self.started = time.monotonic()
        self.random = random.Random(seed)
        self.signer = signer or create_software_identity(
            work_dir / f"{station}-{terminal}.key",
            work_dir / f"{station}-{terminal}.pem",
            institution_no=station,
            terminal_id=terminal,
            station_name=f"Simulated station {station}",
        )
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.journal = Journal(
            self.conn, self.signer, station=station, terminal=terminal, clock=self.clock
        )
        self.journal.open()
        self.command_public_key = command_public_key
        self.paper = "ok"
        self.float_balance_fen = 500_000
        self.cert_days_left = 700
        self.device_error: str | None = None
        self.heartbeat_no = 0
        self.acked_seq = 0
        self.commands_seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._outbox: dict[int, dict[str, object]] = {}
        # Each outbox record's prev_seq: the seq of the outbox record before it, 0 first.
        self._prev_seqs: dict[int, int] = {}
        self._last_outbox_seq = 0
        self._closes: list[dict[str, object]] = []  # this terminal's tx_close records
        self.client = self._make_client()

    # ----------------------------------------------------------------- connection

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sim-{self.station}-{self.terminal}-{self.boot_id}",
            protocol=mqtt.MQTTv5,
        )
        client.will_set(
            self.topic("status"),
            json.dumps({"v": 1, "state": "offline", "reason": "lost"}),
            qos=1,
            retain=True,
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    def certificate_pem(self) -> bytes:
        """The station certificate its records are signed with (for the back office to
        register, as staff do with kiosk-backoffice cert register)."""
        return self.signer.certificate_pem()

    def register_with(self, store: Store, by: str = "fleet simulator") -> None:
        """Register its certificate in a back-office store."""
        register_certificate(
            store, self.station, self.terminal, self.certificate_pem(), by=by, now=time.time()
        )

    def topic(self, kind: str) -> str:
        return topic_for(self.station, self.terminal, kind)

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(self.topic("ack"), 1), (self.topic("cmd"), 1)])
        birth = {
            "v": 1,
            "state": "online",
            "time": self._now(),
            "software": SOFTWARE,
            "firmware": FIRMWARE,
            "boot_id": self.boot_id,
        }
        client.publish(self.topic("status"), json.dumps(birth), qos=1, retain=True)
        self.resend_outbox()

    def stop(self) -> None:
        """A clean shutdown: the terminal says it goes offline on purpose."""
        body = {"v": 1, "state": "offline", "reason": "shutdown", "time": self._now()}
        self.client.publish(
            self.topic("status"), json.dumps(body), qos=1, retain=True
        ).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def die(self) -> None:
        """Power cut: the connection drops without DISCONNECT, so the broker sends the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def reboot(self) -> None:
        """Come back after death with a new boot id and the same journal."""
        self.boot_id = uuid.uuid4().hex
        self.started = time.monotonic()
        self.client = self._make_client()
        self.start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        if message.topic.endswith("/ack"):
            with self._lock:
                self.acked_seq = max(self.acked_seq, int(data.get("upto_seq", 0)))
                for seq in [s for s in self._outbox if s <= self.acked_seq]:
                    del self._outbox[seq]
        elif message.topic.endswith("/cmd"):
            self.commands_seen.append(data)
            self._answer_command(data)

    def _answer_command(self, command: dict[str, Any]) -> None:
        ok, error = True, None
        if self.command_public_key is not None and not signature_valid(
            self.command_public_key, command
        ):
            ok, error = False, "the command's signature does not verify"
        result = {"name": command.get("name"), "simulated": True} if ok else None
        body = {
            "v": 1,
            "id": command.get("id"),
            "ok": ok,
            "result": result,
            "error": error,
            "time": self._now(),
        }
        self.client.publish(self.topic("cmd_result"), json.dumps(body), qos=1)

    # ----------------------------------------------------------------- telemetry

    def _now(self) -> str:
        return iso(self.clock.now())

    def today(self) -> date:
        """The business day its records fall on now: the date at the station, whatever zone
        the machine running the simulator keeps."""
        return self.clock.now().date()

    def heartbeat(self) -> None:
        seq, head = self.journal.head()
        self.heartbeat_no += 1
        body = {
            "v": 1,
            "time": self._now(),
            "seq_no": self.heartbeat_no,
            "uptime_s": int(time.monotonic() - self.started),
            "chain": {"seq": seq, "hash": head},
            "turnover_fen": self.journal.turnover_fen(),
            "boot_id": self.boot_id,
        }
        self.client.publish(self.topic("heartbeat"), json.dumps(body), qos=0)

    def health_payload(self) -> dict[str, Any]:
        with self._lock:
            backlog = len(self._outbox)
        printer = {"online": True, "paper": self.paper, "error": self.device_error}
        return {
            "v": 1,
            "time": self._now(),
            "devices": {
                "printer": printer,
                "card_reader": {"online": True, "error": None},
                "token": {"kind": "software", "present": True},
                "ioboard": {"online": True, "error": None},
            },
            "paper": self.paper,
            "float_balance_fen": self.float_balance_fen,
            "cert_days_left": self.cert_days_left,
            "disk_free_mb": 2048,
            "mem_free_mb": 256,
            "cpu_temp_c": 48.5,
            "uptime_s": int(time.monotonic() - self.started),
            "outbox_backlog": backlog,
            "software": SOFTWARE,
            "firmware": FIRMWARE,
        }

    def health(self) -> None:
        self.client.publish(
            self.topic("health"), json.dumps(self.health_payload()), qos=1, retain=True
        )

    def event(self, kind: str, **data: Any) -> None:
        body = {"v": 1, "time": self._now(), "kind": kind, "data": data}
        self.client.publish(self.topic("event"), json.dumps(body), qos=1)

    # ----------------------------------------------------------------- business

    def pay(
        self,
        amount_fen: int,
        fee_fen: int = 0,
        *,
        service: str | None = None,
        day: date | None = None,
        wallet: PaymentScheme | None = None,
        refunded: bool = False,
    ) -> dict[str, object]:
        """A paid bill: a signed tx_close record, queued in the outbox and published. wallet:
        paid by phone with that wallet instead of cash (the paid order funds the posting: the
        float pays nothing); refunded: paid by phone but never posted, the whole amount sent
        back to the wallet (outcome refunded)."""
        tx_id = uuid.uuid4().hex
        seq, _ = self.journal.head()
        business_day = (day or self.today()).isoformat()
        fields: dict[str, object] = {
            "receipt_no": f"{self.terminal}-{seq + 1:08d}",
            "tx_id": tx_id,
            "kind": "bill",
            "service": service or self.random.choice(SERVICES),
            "account_masked": f"****{self.random.randrange(10000):04d}",
            "amount_fen": amount_fen,
            "fee_fen": fee_fen,
            "cash_in_fen": amount_fen + fee_fen,
            "voucher_fen": 0,
            "credited_fen": 0,
            "outcome": "paid",
            "platform_ref": f"P{seq + 1}",
            "business_day": business_day,
            "payment_method": str(PayMethod.CASH),
        }
        if wallet is not None or refunded:
            fields |= _by_phone(tx_id, amount_fen + fee_fen, wallet or PaymentScheme.WECHAT)
            if refunded:
                fields |= {"outcome": str(TxOutcome.REFUNDED), "platform_ref": None}
                fields["refunded_fen"] = amount_fen + fee_fen
        by_cash = fields["payment_method"] == PayMethod.CASH
        with write_transaction(self.conn):
            record = self.journal.append(
                RecordType.TX_CLOSE,
                fields,
                sign=True,
                turnover_add_fen=amount_fen + fee_fen if by_cash else 0,
            )
        if by_cash:
            self.float_balance_fen -= amount_fen
        self._closes.append(record)
        self._queue(record)
        return record

    def journal_record(
        self, kind: str, fields: dict[str, object], *, sign: bool = True, sig_failed: bool = False
    ) -> dict[str, object]:
        """Any outbox record type (kiosk.journal.record_types), journaled, queued and published.
        sig_failed: as the terminal journals it while its signing token fails (unsigned,
        marked so)."""
        with write_transaction(self.conn):
            record = self.journal.append(kind, fields, sign=sign and not sig_failed)
        if sig_failed:
            record = {**record, "sig_failed": True}
        self._queue(record)
        return record

    def journal_record_unqueued(self, n: int) -> dict[str, object]:
        """A signed bill payment journaled but not queued (the bench builds its stream); one
        in QR_SHARE is paid by phone, the wallets in turn."""
        amount_fen = 100 + n % 900
        fields: dict[str, object] = {"tx_id": f"bench-{n}", "outcome": "paid"}
        fields |= {"amount_fen": amount_fen, "fee_fen": 10, "service": SERVICES[n % len(SERVICES)]}
        fields["payment_method"] = str(PayMethod.CASH)
        if n % QR_SHARE == 0:
            wallet = list(PaymentScheme)[n // QR_SHARE % len(PaymentScheme)]
            fields |= _by_phone(f"bench-{n}", amount_fen + 10, wallet)
        with write_transaction(self.conn):
            return self.journal.append(RecordType.TX_CLOSE, fields, sign=True)

    def outbox_envelope(self, seq: int, prev_seq: int, record: dict[str, object]) -> bytes:
        return json.dumps({"v": 1, "seq": seq, "prev_seq": prev_seq, "record": record}).encode()

    def close_day(self, day: date, *, paid_count: int, paid_fen: int) -> dict[str, object]:
        """A signed day_close with the figures given and, as the terminal computes it, the
        split by payment method of the closes this simulator journaled for that day."""
        report = {
            "business_day": day.isoformat(),
            "paid_count": paid_count,
            "paid_fen": paid_fen,
            "services": {},
            "float_balance_fen": self.float_balance_fen,
            **payment_method_split(self._closes, day.isoformat()),
        }
        with write_transaction(self.conn):
            record = self.journal.append(RecordType.DAY_CLOSE, report, sign=True)
        self._queue(record)
        return record

    def _queue(self, record: dict[str, object]) -> None:
        seq = int(str(record["seq"]))
        with self._lock:
            self._prev_seqs[seq], self._last_outbox_seq = self._last_outbox_seq, seq
            self._outbox[seq] = record
        self._publish_record(seq, record)

    def outbox_payload(self, seq: int, record: dict[str, object]) -> bytes:
        """The outbox message for one of this terminal's records (journaled by it)."""
        with self._lock:
            prev_seq = self._prev_seqs[seq]
        return json.dumps({"v": 1, "seq": seq, "prev_seq": prev_seq, "record": record}).encode()

    def _publish_record(self, seq: int, record: dict[str, object]) -> None:
        self.client.publish(self.topic("outbox"), self.outbox_payload(seq, record), qos=1)

    def resend_outbox(self) -> None:
        with self._lock:
            pending = sorted(self._outbox.items())
        for seq, record in pending:
            self._publish_record(seq, record)

    def backlog(self) -> int:
        with self._lock:
            return len(self._outbox)


def _by_phone(tx_id: str, paid_fen: int, wallet: PaymentScheme) -> dict[str, object]:
    """The fields of a tx_close paid by phone (docs/journal-format.md): no cash, no voucher,
    the wallet, its reference, what the order took and what went back (nothing, if paid)."""
    return {
        "payment_method": str(PayMethod.QR),
        "paid_with": str(wallet),
        "provider_ref": f"{wallet}-{tx_id[:16]}",
        "paid_in_fen": paid_fen,
        "refunded_fen": 0,
        "cash_in_fen": 0,
        "voucher_fen": 0,
    }


class Fleet:
    """N simulated terminals on one broker, ticking on a shared schedule."""

    def __init__(
        self,
        work_dir: Path,
        count: int,
        *,
        host: str,
        port: int,
        first_station: int = 31010001,
        terminals_per_station: int = 2,
        command_public_key: ec.EllipticCurvePublicKey | None = None,
    ) -> None:
        self.terminals = [
            SimulatedTerminal(
                work_dir,
                station=str(first_station + index // terminals_per_station),
                terminal=f"T-{index % terminals_per_station + 1:02d}",
                host=host,
                port=port,
                command_public_key=command_public_key,
                seed=index,
            )
            for index in range(count)
        ]

    def start(self) -> None:
        for terminal in self.terminals:
            terminal.start()

    def stop(self) -> None:
        for terminal in self.terminals:
            terminal.stop()

    def run(
        self,
        *,
        heartbeat_s: float,
        health_s: float,
        tx_per_hour: float,
        duration_s: float | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Publish telemetry and transactions until duration_s has passed (None: forever)."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_heartbeat = next_health = time.monotonic()
        tick = min(heartbeat_s, 1.0)
        while not should_stop() and (deadline is None or time.monotonic() < deadline):
            now = time.monotonic()
            if now >= next_heartbeat:
                for terminal in self.terminals:
                    terminal.heartbeat()
                next_heartbeat = now + heartbeat_s
            if now >= next_health:
                for terminal in self.terminals:
                    terminal.health()
                next_health = now + health_s
            for terminal in self.terminals:
                if terminal.random.random() < tx_per_hour * tick / 3600:
                    # About one payment in QR_SHARE by phone, a few of them refunded.
                    by_phone = terminal.random.randrange(QR_SHARE) == 0
                    terminal.pay(
                        terminal.random.randrange(1_000, 30_000),
                        100,
                        wallet=terminal.random.choice(list(PaymentScheme)) if by_phone else None,
                        refunded=by_phone and terminal.random.random() < 0.05,
                    )
                if terminal.random.random() < 0.001:
                    terminal.paper = "near_end" if terminal.paper == "ok" else terminal.paper
            time.sleep(tick)
