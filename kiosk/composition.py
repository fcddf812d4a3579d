"""The composition root: builds a Terminal from a Config, choosing real or simulated devices.

Device drivers are imported here lazily, by choice, so kiosk/ itself never imports a
hardware library (the drivers do).
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.catalog import Catalog, CatalogStore, shipped_operator_public_pem
from kiosk.clock import Clock, SystemClock
from kiosk.config import Config
from kiosk.devices import IoBoard, PaymentCodeScanner
from kiosk.errors import ConfigError
from kiosk.events import EventBus
from kiosk.instance_lock import DataDirectoryLock
from kiosk.platform import PlatformClient
from kiosk.signing import Signer
from kiosk.terminal import Terminal


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


def simulator_dir(config: Config) -> Path:
    return config.data_path / "simulators"


def build_board(config: Config, sims: SimulatedDevices) -> IoBoard | None:
    """The I/O board: real on its port, the firmware logic in-process, or none."""
    devices = config.devices
    if devices.ioboard == "real":
        board: IoBoard = _construct("drivers.ioboard.host", "SerialIoBoard", devices.ioboard_port)
        return board
    if devices.ioboard == "sim":
        board = sims.board = _construct(
            "drivers.ioboard.simulated", "SimulatedIoBoard", simulator_dir(config) / "ioboard"
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
        scanner = sims.scanner = _construct("drivers.scanner.simulated", "SimulatedScanner")
        return scanner
    return None


def build_devices(config: Config) -> Devices:
    devices = config.devices
    sims = SimulatedDevices()
    base = simulator_dir(config)
    base.mkdir(parents=True, exist_ok=True)
    board = build_board(config, sims)
    if devices.cash == "sim":
        cash = sims.cash = _construct(
            "drivers.cash.simulated", "SimulatedCashAcceptor", base / "cash-acceptor.sqlite3"
        )
    else:
        cash = board  # validated: cash = "real" needs ioboard = "real"; one device, two roles
    if devices.card_reader == "sim":
        cards = sims.cards = _construct(
            "drivers.smartcard.simulated", "SimulatedCardReader", base / "cards.sqlite3"
        )
    else:
        cards = _construct("drivers.smartcard.pcsc_reader", "PcscCardReader", devices.reader_name)
    columns = devices.receipt_columns
    if devices.printer == "sim":
        printer = sims.printer = _construct(
            "drivers.printer.simulated",
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


def catalog_provider(config: Config) -> CatalogStore:
    key_file = config.business.operator_key_file
    operator_key = Path(key_file).read_bytes() if key_file else shipped_operator_public_pem()
    return CatalogStore(config.data_path / "catalog", operator_key)


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
