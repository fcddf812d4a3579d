"""The composition root: builds a Terminal from a Config, choosing real or simulated devices.

Device drivers are imported here lazily, by choice, so kiosk/ itself never imports a
hardware library; a device kind whose real driver is not available says so at start.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.catalog import Catalog, CatalogStore, shipped_operator_public_pem
from kiosk.clock import Clock, SystemClock
from kiosk.config import Config
from kiosk.devices import IoBoard
from kiosk.errors import ConfigError
from kiosk.events import EventBus
from kiosk.platform import PlatformClient
from kiosk.signing import Signer
from kiosk.terminal import Terminal


@dataclass
class SimulatedDevices:
    """The simulators of a terminal, kept so the demo and the soak can drive them."""

    cash: Any = None
    cards: Any = None
    printer: Any = None


def _construct(module: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def simulator_dir(config: Config) -> Path:
    return config.data_path / "simulators"


def build_devices(config: Config) -> tuple[Any, Any, Any, SimulatedDevices]:
    devices = config.devices
    sims = SimulatedDevices()
    base = simulator_dir(config)
    base.mkdir(parents=True, exist_ok=True)
    unavailable = (
        "config key 'devices.{key}' is 'real', but this build has no real {what} driver "
        "yet: use 'sim'"
    )
    if devices.cash == "sim":
        cash = sims.cash = _construct(
            "drivers.cash.simulated", "SimulatedCashAcceptor", base / "cash-acceptor.sqlite3"
        )
    else:
        raise ConfigError(unavailable.format(key="cash", what="I/O board"))
    if devices.card_reader == "sim":
        cards = sims.cards = _construct(
            "drivers.smartcard.simulated", "SimulatedCardReader", base / "cards.sqlite3"
        )
    else:
        raise ConfigError(unavailable.format(key="card_reader", what="card reader"))
    columns = 32 if devices.paper_width_mm == 58 else 48
    if devices.printer == "sim":
        printer = sims.printer = _construct(
            "drivers.printer.simulated",
            "SimulatedPrinter",
            config.data_path / "receipts",
            columns=columns,
        )
    else:
        raise ConfigError(unavailable.format(key="printer", what="receipt printer"))
    return cash, cards, printer, sims


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
    signer = signer or build_signer(config)
    clock = clock or SystemClock(config.business.timezone)
    cash, cards, printer, sims = build_devices(config)
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
        cash=cash,
        cards=cards,
        printer=printer,
        clock=clock,
        events=events,
        board=board,
    )
    return terminal, sims
