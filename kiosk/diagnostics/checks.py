"""The terminal's self-tests, one function per item, registered in the order they run.

Owns what each check looks at and how it judges it: pass, warn, fail or skipped, with a
detail and the next thing a technician does. Checks reach devices only through the
kiosk.devices Protocols and the Signer; a check never raises for a device fault (the fault
is its verdict) and never changes business state: a test coin is acknowledged and reported
so that no transaction counts it, board events are left for the terminal core.
"""

import base64
import email.utils
import http.client
import io
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from kiosk.devices import LAMP_MODES, DeviceError, ReceiptDocument, ReceiptLine
from kiosk.diagnostics.model import (
    CheckRegistry,
    DiagnosticContext,
    Outcome,
    failed,
    passed,
    skipped,
    warned,
)
from kiosk.errors import KioskError
from kiosk.i18n import bilingual
from kiosk.journal import JournalError, export_jsonl, verify_jsonl
from kiosk.message_text import MessageText, error_text
from kiosk.platform import PlatformClient, PlatformRefused, PlatformUnavailable
from kiosk.platform.models import PlatformError
from kiosk.provisioning.archive import archived_certificates
from kiosk.schema import user_version
from kiosk.station_keys import StationKeyError, station_key_of
from kiosk.terminal_schema import TERMINAL

REGISTRY = CheckRegistry()
POLL_S = 0.2
_NO_TECHNICIAN = "unattended run: not tested"


def _wait_for(condition: Callable[[], Any], seconds: float) -> Any:
    """Poll condition until it returns something truthy or the time is up (then None)."""
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


# ---------------------------------------------------------------- receipt printer


@REGISTRY.add("printer.status", "Receipt printer status")
def printer_status(ctx: DiagnosticContext) -> Outcome:
    if ctx.printer is None:
        return skipped("this configuration has no receipt printer")
    try:
        status = ctx.printer.status()
    except DeviceError as exc:
        return failed(
            MessageText("printer offline: {problem}", problem=error_text(exc)),
            "check the printer's power and cable, then run again",
        )
    facts: dict[str, object] = {
        "online": status.online,
        "cover_open": status.cover_open,
        "paper_near_end": status.paper_near_end,
        "paper_out": status.paper_out,
        "error": status.error,
    }
    # A printer stopped for its cover or paper answers offline too (DLE EOT 1), as
    # kiosk.availability also knows: the cause a technician can fix comes first.
    if status.cover_open:
        return failed("printer cover open", "close the printer cover, then run again", **facts)
    if status.paper_out:
        return failed("printer paper out", "load a new paper roll, then run again", **facts)
    if status.online is not True:
        return failed(
            "printer offline: it does not answer its status request",
            "check the printer's power and its cable to the terminal, then run again",
            **facts,
        )
    if status.error:
        return failed(
            "printer reports an error (cutter jam or head fault)",
            "clear the paper path and the cutter; if it stays, replace the printer",
            **facts,
        )
    if not status.ready:
        return failed(
            "printer status unknown: it answered without saying it is ready",
            "power the printer off and on, then run again",
            **facts,
        )
    if status.paper_near_end:
        return warned(
            "printer paper near end", "load a new paper roll before leaving the site", **facts
        )
    return passed("printer ready", **facts)


@REGISTRY.add("printer.test_receipt", "Test receipt", interactive=True)
def printer_test_receipt(ctx: DiagnosticContext) -> Outcome:
    if ctx.printer is None:
        return skipped("this configuration has no receipt printer")
    if ctx.technician is None:
        return skipped(_NO_TECHNICIAN, "run kiosk-tool diagnose on site without --unattended")
    station = ctx.config.station
    moment = ctx.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    document = ReceiptDocument(
        job_id=f"DIAG-{ctx.now().strftime('%Y%m%d%H%M%S')}/1",
        lines=(
            ReceiptLine(bilingual("Self-test receipt"), bold=True, align="center"),
            ReceiptLine(f"{station.institution_no} {station.terminal_id}"),
            ReceiptLine(moment),
            ReceiptLine("0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        ),
        qr_payload=f"DIAG:{station.terminal_id}",
        cut="full",
    )
    try:
        ctx.printer.print_receipt(document)
    except DeviceError as exc:
        return failed(
            MessageText("test receipt not printed: {problem}", problem=error_text(exc)),
            "fix the printer, then run again",
        )
    except ValueError as exc:
        return failed(
            MessageText("test receipt refused by the driver: {problem}", problem=error_text(exc)),
            "report this to support",
        )
    if ctx.technician.confirm("Is the test receipt printed completely, legibly and cut?"):
        return passed("test receipt printed and checked by the technician")
    return failed(
        "test receipt printed badly (technician's check)",
        "clean the print head, check the paper type, then run again",
    )


# ---------------------------------------------------------------- card reader


@REGISTRY.add("card_reader.link", "Card reader")
def card_reader_link(ctx: DiagnosticContext) -> Outcome:
    reader = ctx.card_reader
    if reader is None:
        return skipped("this configuration has no card reader")
    health = reader.health()
    facts = {key: value for key, value in health.items() if isinstance(value, str | int | bool)}
    if health.get("connected") is False:
        return failed(
            "card reader missing: it is not connected",
            "plug the card reader's USB cable in (and check pcscd), then run again",
            **facts,
        )
    try:
        card = reader.read_prepaid()
    except DeviceError as exc:
        if "not connected" in str(exc) or "reader" in str(exc).lower():
            return failed(
                MessageText("card reader missing: {problem}", problem=error_text(exc)),
                "check the card reader's cable, then run again",
            )
        return warned(
            MessageText(
                "the card in the reader cannot be read: {problem}", problem=error_text(exc)
            ),
            "remove the card from the reader",
            **facts,
        )
    if card is not None:
        facts["card_no"] = card.card_no
    return passed("card reader answers", **facts)


@REGISTRY.add("card_reader.test_card", "Test card", interactive=True)
def card_reader_test_card(ctx: DiagnosticContext) -> Outcome:
    reader = ctx.card_reader
    if reader is None:
        return skipped("this configuration has no card reader")
    if ctx.technician is None:
        return skipped(_NO_TECHNICIAN, "run kiosk-tool diagnose on site without --unattended")
    ctx.technician.instruct("Insert the test prepaid card into the card reader.")
    errors: list[str] = []

    def read() -> object:
        try:
            return reader.read_prepaid()
        except DeviceError as exc:
            errors.append(str(exc))
            return None

    card = _wait_for(read, ctx.settings.input_wait_s)
    if card is None:
        if errors:
            return failed(
                MessageText("test card not read: {problem}", problem=errors[-1]),
                "try another test card",
            )
        return failed(
            MessageText(
                "no test card read within {input_wait_s:.0f} s",
                input_wait_s=ctx.settings.input_wait_s,
            ),
            "insert the test card fully (chip first), then run again",
        )
    ctx.technician.instruct("Remove the test card.")
    return passed(
        MessageText("test card {card_no} read", card_no=card.card_no), card_no=card.card_no
    )


# ---------------------------------------------------------------- token and certificate


@REGISTRY.add("token.sign", "USBKey token: login, sign and verify")
def token_sign(ctx: DiagnosticContext) -> Outcome:
    signer = ctx.signer()
    if signer is None:
        return _token_failure(ctx.signer_error)
    health = signer.health()
    if health.get("present") is False:
        error = str(health.get("last_error") or "")
        return failed(
            MessageText("USBKey token absent: {error}", error=error)
            if error
            else "USBKey token absent",
            "plug the USBKey token in, then run again",
        )
    challenge = f"diagnose {ctx.config.station.terminal_id} {ctx.now().isoformat()}".encode()
    try:
        signature = signer.sign(challenge)
        certificate = x509.load_pem_x509_certificate(signer.certificate_pem())
    except KioskError as exc:
        return _token_failure(str(exc))
    except ValueError:
        return failed(
            "the token's station certificate is not a valid certificate",
            "provision the token again with kiosk-tool provision",
        )
    try:
        station_key = station_key_of(certificate)
    except StationKeyError as exc:
        return failed(
            MessageText(
                "the token's station certificate cannot be a station's: {problem}",
                problem=error_text(exc),
            ),
            "provision the token again with kiosk-tool provision",
        )
    if station_key.algorithm is not signer.algorithm:
        return failed(
            MessageText(
                "the token signs {algorithm}, but its certificate holds a {key_type} key "
                "(token.key_type does not fit the token)",
                algorithm=signer.algorithm.value,
                key_type=station_key.key_type.value,
            ),
            "set token.key_type to the station key's type, or provision the token again",
        )
    if not station_key.verify(signature, challenge):
        return failed(
            "token signature does not verify with its station certificate (key and"
            " certificate do not belong together)",
            "provision the token again with kiosk-tool provision",
        )
    return passed(
        MessageText(
            "token signed and the signature verified ({kind}, {algorithm})",
            kind=signer.kind,
            algorithm=signer.algorithm.value,
        ),
        kind=signer.kind,
        algorithm=signer.algorithm.value,
        signature_b64=base64.b64encode(signature).decode("ascii")[:24] + "...",
    )


@REGISTRY.add("catalog.trust", "Catalog signing key: not the development key in production")
def catalog_trust(ctx: DiagnosticContext) -> Outcome:
    from kiosk.config import development_trust_problem, real_token, trusts_development_key

    problem = development_trust_problem(ctx.config)
    if problem is not None:
        return failed(
            "a real USBKey terminal trusts the public development catalog key",
            "set business.operator_key_file to the operator's production public key"
            " (docs/catalog.md), then run again",
        )
    development = trusts_development_key(ctx.config)
    if development:
        return passed(
            "development catalog key trusted (development token: allowed)",
            real_token=real_token(ctx.config.token),
        )
    return passed("catalogs verified with the operator's own key", real_token=True)


def _token_failure(error: str) -> Outcome:
    lowered = error.lower()
    if "locked" in lowered:
        return failed(
            MessageText("token PIN locked: {error}", error=error),
            "unblock the user PIN with the SO PIN (docs/token.md), then run again",
        )
    if "pin" in lowered and ("refused" in lowered or "wrong" in lowered or "expired" in lowered):
        return failed(
            MessageText("token PIN wrong: {error}", error=error),
            "correct the PIN given by token.pin_source (do not retry: wrong PINs lock the token)",
        )
    if "not present" in lowered or "plug" in lowered:
        return failed(
            MessageText("USBKey token absent: {error}", error=error),
            "plug the USBKey token in, then run again",
        )
    return failed(
        MessageText("USBKey token unusable: {error}", error=error),
        "check the [token] configuration and token",
    )


@REGISTRY.add("token.certificate", "Station certificate expiry")
def token_certificate(ctx: DiagnosticContext) -> Outcome:
    signer = ctx.signer()
    if signer is None:
        return skipped(
            MessageText("no certificate to check: {signer_error}", signer_error=ctx.signer_error),
            "fix the token first",
        )
    try:
        certificate = x509.load_pem_x509_certificate(signer.certificate_pem())
    except KioskError as exc:
        # The token item already names the token's fault; this one was not tested.
        return skipped(
            MessageText("certificate not checked: {problem}", problem=error_text(exc)),
            "fix the token first",
        )
    except ValueError as exc:
        return failed(
            MessageText("station certificate unreadable: {problem}", problem=error_text(exc)),
            "provision the token again",
        )
    not_after = certificate.not_valid_after_utc
    days = (not_after - ctx.now()).days
    facts: dict[str, object] = {
        "subject": certificate.subject.rfc4514_string(),
        "not_after": not_after.isoformat(timespec="seconds"),
        "days_left": days,
    }
    numbers = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    held = str(numbers[0].value) if numbers else ""
    if held != ctx.config.station.institution_no:
        return failed(
            MessageText(
                "station certificate belongs to 机构号 {held}, not {institution_no} as configured",
                held=held or "(none)",
                institution_no=ctx.config.station.institution_no,
            ),
            "use this station's token, or correct station.institution_no",
            **facts,
        )
    if days < 0:
        return failed(
            MessageText("station certificate expired on {not_after:%Y-%m-%d}", not_after=not_after),
            "renew it now: kiosk-tool provision renew",
            **facts,
        )
    if days < ctx.settings.cert_warn_days:
        return warned(
            MessageText(
                "station certificate expires in {days} days ({not_after:%Y-%m-%d})",
                days=days,
                not_after=not_after,
            ),
            "renew it before it expires: kiosk-tool provision renew",
            **facts,
        )
    return passed(MessageText("station certificate valid for {days} more days", days=days), **facts)


# ---------------------------------------------------------------- I/O board


@REGISTRY.add("ioboard.link", "I/O board link")
def ioboard_link(ctx: DiagnosticContext) -> Outcome:
    if ctx.ioboard is not None:
        try:
            status = ctx.ioboard.board_status()
        except DeviceError as exc:
            return failed(
                MessageText("I/O board not answering: {problem}", problem=error_text(exc)),
                "check the I/O board's cable, then run again",
            )
        facts: dict[str, object] = {
            "firmware_version": status.firmware_version,
            "door_open": status.door_open,
            "tamper_latched": status.tamper_latched,
            "lamp": status.lamp,
        }
        if not status.link_up:
            return failed(
                "I/O board not answering: link down",
                "check the I/O board's cable and power, then run again",
                **facts,
            )
        if status.tamper_latched:
            return failed(
                "I/O board reports tamper (latched)",
                "inspect the cabinet, then clear the tamper in maintenance mode",
                **facts,
            )
        return passed(
            MessageText(
                "I/O board answers (firmware {firmware_version})",
                firmware_version=status.firmware_version,
            ),
            **facts,
        )
    if ctx.cash is None:
        return skipped("this configuration has no I/O board")
    health = ctx.cash.health()
    if health.get("online") is False:
        return failed(
            "I/O board not answering (cash acceptor offline)",
            "check the I/O board's cable and power, then run again",
        )
    if health.get("jammed"):
        return failed("cash acceptor jammed", "clear the note or coin path, then run again")
    return passed("cash acceptor on the I/O board answers", pending=health.get("pending"))


@REGISTRY.add("ioboard.lamp", "Status lamp", interactive=True)
def ioboard_lamp(ctx: DiagnosticContext) -> Outcome:
    if ctx.ioboard is None:
        return skipped("this configuration has no I/O board driver: lamp not tested")
    if ctx.technician is None:
        return skipped(_NO_TECHNICIAN, "run kiosk-tool diagnose on site without --unattended")
    wrong: list[str] = []
    try:
        for mode in LAMP_MODES:
            ctx.ioboard.set_lamp(mode)
            if not ctx.technician.confirm(f"Does the status lamp now show '{mode}'?"):
                wrong.append(mode)
        ctx.ioboard.set_lamp("maintenance")
    except DeviceError as exc:
        return failed(
            MessageText("lamp cannot be set: {problem}", problem=error_text(exc)),
            "check the I/O board, then run again",
        )
    if wrong:
        return failed(
            MessageText("status lamp wrong in mode(s) {modes}", modes=", ".join(wrong)),
            "check the lamp and its wiring to the I/O board",
        )
    return passed("status lamp shows every mode")


@REGISTRY.add("ioboard.coin", "Coin input", interactive=True)
def ioboard_coin(ctx: DiagnosticContext) -> Outcome:
    cash = ctx.cash
    if cash is None:
        return skipped("this configuration has no cash acceptor")
    if ctx.technician is None:
        return skipped(_NO_TECHNICIAN, "run kiosk-tool diagnose on site without --unattended")
    try:
        before = {event.event_id for event in cash.pending()}
        cash.set_accepting(True)
        ctx.technician.instruct("Insert one coin (the terminal keeps it as a test coin).")
        event = _wait_for(
            lambda: next((e for e in cash.pending() if e.event_id not in before), None),
            ctx.settings.input_wait_s,
        )
        cash.set_accepting(False)
        if event is None:
            return failed(
                MessageText(
                    "no coin counted within {input_wait_s:.0f} s",
                    input_wait_s=ctx.settings.input_wait_s,
                ),
                "check the coin path and the pulse wiring to the I/O board",
            )
        # A test coin belongs to no transaction: acknowledge it so no payment counts it,
        # and report it so the maintenance record accounts for it.
        cash.acknowledge(event.event_id)
    except DeviceError as exc:
        return failed(
            MessageText("coin input cannot be tested: {problem}", problem=error_text(exc)),
            "check the I/O board",
        )
    return passed(
        MessageText(
            "{kind} of {value_fen} fen counted (test coin, record it)",
            kind=event.kind,
            value_fen=event.value_fen,
        ),
        value_fen=event.value_fen,
        kind=event.kind,
    )


@REGISTRY.add("ioboard.door", "Door switch", interactive=True)
def ioboard_door(ctx: DiagnosticContext) -> Outcome:
    board = ctx.ioboard
    if board is None:
        return skipped("this configuration has no I/O board driver: door switch not tested")
    if ctx.technician is None:
        return skipped(_NO_TECHNICIAN, "run kiosk-tool diagnose on site without --unattended")
    try:
        before = {event.event_id for event in board.board_events()}
        ctx.technician.instruct("Open the cabinet door (then close it again).")
        event = _wait_for(
            lambda: next(
                (
                    e
                    for e in board.board_events()
                    if e.event_id not in before and e.kind == "door_open"
                ),
                None,
            ),
            ctx.settings.input_wait_s,
        )
    except DeviceError as exc:
        return failed(
            MessageText("door switch cannot be tested: {problem}", problem=error_text(exc)),
            "check the I/O board",
        )
    # The event stays unacknowledged: the terminal core journals every door opening.
    if event is None:
        return failed(
            MessageText(
                "no door opening seen within {input_wait_s:.0f} s",
                input_wait_s=ctx.settings.input_wait_s,
            ),
            "check the door switch and its wiring to the I/O board",
        )
    return passed("door opening seen by the I/O board")


# ---------------------------------------------------------------- network


@REGISTRY.add("mqtt.connect", "MQTT broker connection")
def mqtt_connect(ctx: DiagnosticContext) -> Outcome:
    target = ctx.mqtt
    if target is None:
        return skipped("telemetry (MQTT) is not configured: not tested")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    outcome: dict[str, Any] = {}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        # Another id than the terminal's own: a broker drops the older of two equal ids.
        client_id=f"{target.client_id}-diagnose",
    )

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["reason"] = reason

    client.on_connect = on_connect
    try:
        if target.ca_file:
            client.tls_set(
                ca_certs=target.ca_file,
                certfile=target.cert_file or None,
                keyfile=target.key_file or None,
            )
        client.connect(target.host, target.port, keepalive=10)
    except (OSError, ValueError) as exc:
        return failed(
            MessageText(
                "MQTT broker not reachable at {host}:{port} ({problem})",
                host=target.host,
                port=target.port,
                problem=error_text(exc),
            ),
            "check the network and the broker address in [telemetry]; the terminal keeps"
            " its reports in the outbox until the broker is back",
        )
    client.loop_start()
    try:
        _wait_for(lambda: "reason" in outcome, ctx.settings.network_timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    reason = outcome.get("reason")
    if reason is None:
        return failed(
            MessageText(
                "MQTT broker at {host}:{port} did not answer the connection",
                host=target.host,
                port=target.port,
            ),
            "check the network and the broker, then run again",
        )
    if reason.is_failure:
        return failed(
            MessageText("MQTT broker refused the connection: {reason}", reason=reason),
            "check the terminal's MQTT client certificate and the broker's ACL",
        )
    return passed(
        MessageText(
            "MQTT broker at {host}:{port} accepted the terminal", host=target.host, port=target.port
        )
    )


@REGISTRY.add("platform.reach", "Operator platform")
def platform_reach(ctx: DiagnosticContext) -> Outcome:
    url = ctx.config.platform.url
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(
        parts.hostname or "", parts.port, timeout=ctx.settings.network_timeout_s
    )
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        response.read(65536)
        date = response.getheader("Date")
    except (OSError, http.client.HTTPException) as exc:
        return failed(
            MessageText(
                "platform down or unreachable at {url} ({kind}: {problem})",
                url=url,
                kind=type(exc).__name__,
                problem=error_text(exc),
            ),
            "check the network (cable, SIM, router) and platform.url, then run again",
        )
    finally:
        connection.close()
    if date:
        ctx.shared["platform_date"] = date
        ctx.shared["platform_date_seen"] = ctx.now()
    signer = ctx.signer()
    if signer is None:
        return warned(
            MessageText(
                "platform answers at {url}, but signed requests cannot be tried without the token",
                url=url,
            ),
            "fix the token, then run again",
        )
    client = PlatformClient(
        url,
        station=ctx.config.station.institution_no,
        terminal=ctx.config.station.terminal_id,
        signer=signer,
        timeout_s=ctx.settings.network_timeout_s,
        retries=1,
    )
    try:
        state = client.float_state()
    except PlatformRefused as exc:
        if exc.code == "not_registered":
            return failed(
                MessageText(
                    "platform says the terminal is not registered: {problem}",
                    problem=error_text(exc),
                ),
                "register it: kiosk-tool provision --config FILE",
            )
        return failed(
            MessageText("platform refused a signed request: {problem}", problem=error_text(exc)),
            "see the message",
        )
    except PlatformUnavailable as exc:
        return failed(
            MessageText("platform down: {problem}", problem=error_text(exc)),
            "check the network and try again later",
        )
    except (PlatformError, KioskError) as exc:
        return failed(
            MessageText("platform request failed: {problem}", problem=error_text(exc)),
            "see the message",
        )
    return passed(
        MessageText("platform answers signed requests at {url}", url=url), float=state.to_json()
    )


@REGISTRY.add("clock.skew", "Clock")
def clock_skew(ctx: DiagnosticContext) -> Outcome:
    date = ctx.shared.get("platform_date")
    seen = ctx.shared.get("platform_date_seen")
    if not isinstance(date, str) or not isinstance(seen, datetime):
        return skipped(
            "clock not compared: the platform gave no Date header", "fix the platform link"
        )
    try:
        platform_time = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return skipped(
            MessageText("clock not compared: the platform's Date {date!r} is not a date", date=date)
        )
    # The Date header has whole seconds: a skew below 1 s is not measurable.
    skew = (seen - platform_time).total_seconds()
    facts: dict[str, object] = {"skew_s": round(skew, 1), "platform_date": date}
    if abs(skew) >= ctx.settings.clock_fail_s:
        return failed(
            MessageText("clock skew {skew:+.0f} s against the platform", skew=skew),
            "check time sync (timedatectl, NTP reachable), then run again",
            **facts,
        )
    if abs(skew) >= ctx.settings.clock_warn_s:
        return warned(
            MessageText("clock skew {skew:+.0f} s against the platform", skew=skew),
            "check time sync (timedatectl status)",
            **facts,
        )
    return passed(
        MessageText(
            "clock within {clock_warn_s:.0f} s of the platform",
            clock_warn_s=ctx.settings.clock_warn_s,
        ),
        **facts,
    )


# ---------------------------------------------------------------- storage


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@REGISTRY.add("disk.space", "Disk space")
def disk_space(ctx: DiagnosticContext) -> Outcome:
    usage = shutil.disk_usage(_existing(ctx.config.data_path))
    free_mb = usage.free // (1024 * 1024)
    facts: dict[str, object] = {"free_mb": free_mb, "total_mb": usage.total // (1024 * 1024)}
    if free_mb < ctx.settings.min_free_disk_mb:
        return failed(
            MessageText(
                "disk space low: {free_mb} MB free, at least {min_free_disk_mb} MB needed",
                free_mb=free_mb,
                min_free_disk_mb=ctx.settings.min_free_disk_mb,
            ),
            "collect the logs (kiosk-tool logs collect), then free space or replace the card",
            **facts,
        )
    return passed(MessageText("{free_mb} MB free", free_mb=free_mb), **facts)


@REGISTRY.add("disk.sd_wear", "SD card wear")
def sd_wear(ctx: DiagnosticContext) -> Outcome:
    path = ctx.settings.sd_life_time_path
    try:
        text = path.read_text(encoding="ascii").split()
        estimates = [int(value, 16) for value in text]
    except FileNotFoundError:
        return skipped(
            MessageText("SD card wear: not available ({path} does not exist)", path=path)
        )
    except (OSError, ValueError):
        return skipped(
            MessageText("SD card wear: not available ({path} cannot be read)", path=path)
        )
    if not estimates:
        return skipped(MessageText("SD card wear: not available ({path} is empty)", path=path))
    # eMMC/SD life time estimate (JEDEC JESD84-B51 EXT_CSD 268/269): 0x01 = 0-10 % of the
    # rated erase cycles used ... 0x0A = 90-100 %, 0x0B = exceeded.
    worst = max(estimates)
    facts: dict[str, object] = {"life_time": " ".join(text)}
    if worst >= 0x0B:
        return failed(
            "SD card worn out (life time exceeded)",
            "replace the SD card soon; collect logs and the journal export first",
            **facts,
        )
    if worst >= 0x09:
        return warned(
            MessageText(
                "SD card wear {low}-{high} % of its life", low=(worst - 1) * 10, high=worst * 10
            ),
            "plan to replace the SD card at the next visit",
            **facts,
        )
    used = f"{max(worst - 1, 0) * 10}-{worst * 10} %"
    return passed(MessageText("SD card wear {used} of its life", used=used), **facts)


@REGISTRY.add("journal.verify", "Journal verification")
def journal_verify(ctx: DiagnosticContext) -> Outcome:
    path = ctx.config.database_path
    if not path.is_file():
        return passed("no journal yet (the terminal has not started)")
    certificates = list(ctx.extra_certificates)
    certificates.extend(archived_certificates(ctx.config.data_path))
    signer = ctx.signer()
    if signer is not None:
        try:
            certificates.append(signer.certificate_pem())
        except KioskError:
            pass  # the archive may still hold the certificate
    if not certificates:
        return skipped(
            "journal not verified: no station certificate (token unusable, archive empty)",
            "fix the token, then run again",
        )
    buffer = io.StringIO()
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            count = export_jsonl(conn, buffer)
        finally:
            conn.close()
    except JournalError:
        return passed("no journal yet (the terminal has not started)")
    except sqlite3.Error as exc:
        return failed(
            MessageText("journal database unreadable: {problem}", problem=error_text(exc)),
            "do not put the terminal back into service; call support",
        )
    if count == 0:
        return passed("journal is empty")
    buffer.seek(0)
    report = verify_jsonl(buffer, b"\n".join(certificates))
    if not report.ok:
        return failed(
            MessageText(
                "journal tampered or damaged at record {first_bad_seq}: {problem}",
                first_bad_seq=report.first_bad_seq,
                problem=report.problem,
            ),
            "do not put the terminal back into service: export the journal"
            " (kiosk-tool journal export) and report it to the operator",
            records=report.records,
        )
    return passed(
        MessageText("journal verified: {records} records", records=report.records),
        warnings=list(report.warnings),
    )


@REGISTRY.add("database.schema", "Database schema version")
def database_schema(ctx: DiagnosticContext) -> Outcome:
    """The terminal database's schema version beside this software's (docs/updates.md)."""
    path = ctx.config.database_path
    known = TERMINAL.version
    if not path.is_file():
        return passed("no database yet (the terminal has not started)", software_schema=known)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = user_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return failed(
            MessageText("database unreadable: {problem}", problem=error_text(exc)),
            "do not put the terminal back into service; call support",
        )
    facts: dict[str, object] = {"schema": found, "software_schema": known}
    if found > known:
        return passed(
            MessageText(
                "schema {found}, newer than this software's {known} (a rollback to the "
                "previous slot): used as it is, migrations only add",
                found=found,
                known=known,
            ),
            **facts,
        )
    if found < known:
        return passed(
            MessageText(
                "schema {found}: this software moves it to {known} at its start",
                found=found,
                known=known,
            ),
            **facts,
        )
    return passed(MessageText("schema {found}, this software's", found=found), **facts)


@REGISTRY.add("outbox.backlog", "Outbox backlog")
def outbox_backlog(ctx: DiagnosticContext) -> Outcome:
    if ctx.outbox_backlog is None:
        return skipped("this build has no telemetry outbox: not tested")
    try:
        backlog = ctx.outbox_backlog()
    except (KioskError, sqlite3.Error) as exc:
        return failed(
            MessageText("outbox unreadable: {problem}", problem=error_text(exc)), "call support"
        )
    if backlog >= ctx.settings.outbox_fail:
        return failed(
            MessageText("outbox backlog of {backlog} records not delivered", backlog=backlog),
            "check the MQTT connection; the records are kept until delivered",
            backlog=backlog,
        )
    if backlog >= ctx.settings.outbox_warn:
        return warned(
            MessageText("outbox backlog of {backlog} records", backlog=backlog),
            "check the MQTT connection",
            backlog=backlog,
        )
    return passed(MessageText("outbox backlog {backlog}", backlog=backlog), backlog=backlog)
