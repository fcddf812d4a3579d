"""The composition root: builds a Terminal from a Config, choosing real or simulated devices.

Device drivers are imported lazily, by module name, only for the devices the configuration
names: a terminal whose I/O board is simulated never loads pyserial, one without a PC/SC
stack never loads pyscard. kiosk/ itself never imports a driver (docs/architecture.md).
"""

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.catalog import Catalog
from kiosk.catalog.configured import catalog_provider
from kiosk.clock import Clock, SystemClock
from kiosk.config import Config
from kiosk.devices import IoBoard, PaymentCodeScanner
from kiosk.errors import ConfigError
from kiosk.events import EventBus
from kiosk.instance_lock import DataDirectoryLock
from kiosk.message_text import MessageText
from kiosk.platform import PlatformClient
from kiosk.signing import (
    ALGORITHM_OF_KEY,
    KeyType,
    SignatureAlgorithm,
    Signer,
    SignerError,
    SignerUnavailable,
)
from kiosk.terminal import Terminal

log = logging.getLogger(__name__)


@dataclass
class SimulatedDevices:
    """The simulators of a terminal, kept so the demo, the UI and the soak can drive them."""

    cash: Any = None
    cards: Any = None
    printer: Any = None
    board: Any = None
    scanner: Any = None


@dataclass
class Devices:
    cash: Any
    cards: Any
    printer: Any
    board: IoBoard | None
    sims: SimulatedDevices
    scanner: PaymentCodeScanner | None = None


def _construct(module: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def _simulator(kind: str, module: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """A simulated device: the simulators package is in a development checkout only (the
    terminal's bundle leaves it out), so on a terminal the configuration is what is wrong."""
    try:
        simulators = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("simulators"):
            raise
        raise ConfigError(
            MessageText(
                "config key '{key}' is \"sim\": simulated devices are not installed here "
                '(they come with a development checkout only); set it to "real" for this '
                "terminal",
                key=f"devices.{kind}",
            )
        ) from None
    return getattr(simulators, name)(*args, **kwargs)


def simulator_dir(config: Config) -> Path:
    return config.data_path / "simulators"


def build_board(config: Config, sims: SimulatedDevices) -> IoBoard | None:
    """The I/O board: real on its port, the firmware logic in-process, or none."""
    devices = config.devices
    if devices.ioboard == "real":
        board: IoBoard = _construct("drivers.ioboard.host", "SerialIoBoard", devices.ioboard_port)
        return board
    if devices.ioboard == "sim":
        board = sims.board = _simulator(
            "ioboard", "simulators.ioboard", "SimulatedIoBoard", simulator_dir(config) / "ioboard"
        )
        return board
    return None


def build_scanner(config: Config, sims: SimulatedDevices) -> PaymentCodeScanner | None:
    """The payment-code scanner: HID or serial on its port (reading from now on), the
    in-process simulator, or none."""
    devices = config.devices
    if devices.scanner == "real":
        scanner: PaymentCodeScanner = _construct(
            "drivers.scanner.factory", "open_scanner", devices.scanner_port
        )
        return scanner
    if devices.scanner == "sim":
        scanner = sims.scanner = _simulator("scanner", "simulators.scanner", "SimulatedScanner")
        return scanner
    return None


def build_devices(config: Config) -> Devices:
    devices = config.devices
    sims = SimulatedDevices()
    base = simulator_dir(config)
    base.mkdir(parents=True, exist_ok=True)
    board = build_board(config, sims)
    if devices.cash == "sim":
        cash = sims.cash = _simulator(
            "cash", "simulators.cash", "SimulatedCashAcceptor", base / "cash-acceptor.sqlite3"
        )
    else:
        cash = board  # validated: cash = "real" needs ioboard = "real"; one device, two roles
    if devices.card_reader == "sim":
        cards = sims.cards = _simulator(
            "card_reader", "simulators.smartcard", "SimulatedCardReader", base / "cards.sqlite3"
        )
    else:
        cards = _construct("drivers.smartcard.pcsc_reader", "PcscCardReader", devices.reader_name)
    columns = devices.receipt_columns
    if devices.printer == "sim":
        printer = sims.printer = _simulator(
            "printer",
            "simulators.printer",
            "SimulatedPrinter",
            config.data_path / "receipts",
            columns=columns,
        )
    else:
        printer = build_escpos_printer(config)
    scanner = build_scanner(config, sims)
    return Devices(cash, cards, printer, board, sims, scanner)


def build_escpos_printer(config: Config) -> Any:
    """The real receipt printer of the configuration (the port is opened on first use)."""
    devices = config.devices
    try:
        return _construct(
            "drivers.printer.escpos_driver",
            "EscPosPrinter",
            devices.printer_port,
            devices.receipt_columns,
            model=devices.printer_model,
            confirm=devices.printer_confirm,
            transport=devices.printer_transport,
            jobs_path=config.data_path / "printer-jobs.sqlite3",
        )
    except ValueError as exc:  # the model is not known, or does not take this paper
        raise ConfigError(f"config key 'devices.printer_model': {exc}") from None


def build_signer(config: Config, pin: str | None = None) -> Signer:
    factory = importlib.import_module("drivers.token.factory")
    signer: Signer = factory.signer_from_config(config.token, pin=pin)
    return signer


def build_terminal(
    config: Config,
    *,
    signer: Signer | None = None,
    clock: Clock | None = None,
    events: EventBus | None = None,
    board: IoBoard | None = None,
) -> tuple[Terminal, SimulatedDevices]:
    # Before any device or the token is opened: another process may be running this terminal.
    instance_lock = DataDirectoryLock(config.data_path)
    try:
        return _build_terminal(config, instance_lock, signer, clock, events, board)
    except BaseException:
        instance_lock.release()
        raise


def _build_terminal(
    config: Config,
    instance_lock: DataDirectoryLock,
    signer: Signer | None,
    clock: Clock | None,
    events: EventBus | None,
    board: IoBoard | None,
) -> tuple[Terminal, SimulatedDevices]:
    signer = signer or build_signer(config)
    clock = clock or SystemClock(config.business.timezone)
    devices = build_devices(config)
    platform = PlatformClient(
        config.platform.url,
        station=config.station.institution_no,
        terminal=config.station.terminal_id,
        signer=signer,
        timeout_s=config.platform.timeout_s,
        retries=config.platform.retries,
    )
    store = catalog_provider(config)

    def catalog() -> Catalog:
        return store.current()

    terminal = Terminal(
        config,
        signer=signer,
        platform=platform,
        catalog=catalog,
        cash=devices.cash,
        cards=devices.cards,
        printer=devices.printer,
        clock=clock,
        events=events,
        board=board if board is not None else devices.board,
        instance_lock=instance_lock,
        scanner=devices.scanner,
    )
    return terminal, devices.sims


class UnusableSigner:
    """Stands in for a token that refused its PIN at start (wrong or locked PIN).

    The PKCS#11 driver raises on a refused PIN rather than count the token's retries
    down; the terminal still starts (journal, recovery as far as it goes, telemetry, the
    out-of-service screen with the reason) instead of restarting every 5 s. Replacing the
    PIN source and restarting the service brings the real token back.
    """

    def __init__(self, kind: str, reason: str, algorithm: SignatureAlgorithm) -> None:
        self.kind = kind
        self._reason = reason
        # What the configured key would sign with: nothing is signed while it stands in.
        self.algorithm = algorithm

    def sign(self, data: bytes) -> bytes:
        raise SignerUnavailable(self._reason)

    def certificate_pem(self) -> bytes:
        raise SignerUnavailable(self._reason)

    def health(self) -> dict[str, object]:
        return {"kind": self.kind, "present": False, "logged_in": False, "last_error": self._reason}


def build_hosted_terminal(config: Config, clock: Clock | None = None) -> Terminal:
    """The terminal a runtime hosts, from its configuration.

    A configuration error raises (one line, a technician must fix the file); a token that
    refuses its PIN does not (UnusableSigner): the terminal comes up out of service.
    """
    clock = clock or SystemClock(config.business.timezone)
    signer: Signer
    try:
        signer = build_signer(config)
    except SignerError as exc:
        log.error("the token refused: %s", exc)
        algorithm = ALGORITHM_OF_KEY[KeyType(config.token.key_type)]
        signer = UnusableSigner(config.token.kind, str(exc), algorithm)
    terminal, _ = build_terminal(config, signer=signer, clock=clock)
    return terminal
