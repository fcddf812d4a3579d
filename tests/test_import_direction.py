"""Dependencies point down: every import of every product module, read from its AST.

Nothing is imported: the checker parses each file and looks at `import`, `from ... import`
(at any depth, so a lazy import inside a function counts) and `importlib.import_module`
with a literal name. The rules (docs/architecture.md says why):

- drivers/ < kiosk/ < station/ < ui/, firmware_tools/ (one layer; ui/ reaches devices
  only through station/, kiosk-tool's device commands use drivers/ directly).
- kiosk/ imports none of this project's other packages, no hardware library and no Kivy.
- drivers/ implement kiosk's interfaces: they import kiosk's contract and leaf modules
  (DRIVER_CONTRACTS) and nothing else of kiosk, nor anything above it.
- station/ (the composition root and entry points) imports kiosk/ and drivers/ only.
- backoffice/ imports kiosk's contracts (BACKOFFICE_CONTRACTS), never station/, ui/,
  firmware_tools/ or drivers/.
- Nothing shipped (SHIPPED: every package but simulators/) imports simulators/ or tests/.
  The composition root names a device simulator's module only when a configuration asks
  for simulated devices, through station.composition._simulator (not an import: on a
  terminal, which has no simulators, that configuration is refused in one line).
- simulators/ (the demo, the simulated devices, cards and fleet) may use every product
  package; simulators/platform/ imports the platform wire (kiosk.platform.models) and
  kiosk's leaf modules (PLATFORM_SIM_CONTRACTS), never the platform client or the terminal.
- Kivy is imported in ui/ and the demo's panel and window (simulators/demo/) only.
"""

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("kiosk", "drivers", "station", "ui", "firmware_tools", "backoffice")
PRODUCT = (*SHIPPED, "simulators", "simulators.platform")
# Never shipped: what a shipped package may not import at all.
NOT_SHIPPED = ("simulators", "tests")

# What a driver may use of kiosk/: the interfaces it implements and the leaf modules both
# ends share (money, errors, storage, the receipt layout it prints, the payment-code
# and voucher-code formats it scans, SM2, the translated messages, the token's
# configuration section).
DRIVER_CONTRACTS = (
    "kiosk.devices",
    "kiosk.signing",
    "kiosk.errors",
    "kiosk.money",
    "kiosk.storage",
    "kiosk.schema",
    "kiosk.receipts.layout",
    "kiosk.payment_codes",
    "kiosk.voucher_codes",
    "kiosk.sm2",
    "kiosk.i18n",
    "kiosk.config",
)
# The back office reads what terminals publish and sign: the journal's record types and
# verification, the telemetry wire, the update bundle's version order and the update events,
# the maintenance visit record, and kiosk's leaf modules.
BACKOFFICE_CONTRACTS = (
    "kiosk.journal",
    "kiosk.updates.metadata",
    "kiosk.updates.events",
    "kiosk.diagnostics.visit",
    # The one low-float threshold both ends use, and the ratings' reason vocabulary.
    "kiosk.ledger.policy",
    "kiosk.ratings",
    # How residents paid (issue #21): the payment-method vocabulary, the wallets and the
    # day close's split rule, read by the books as the terminal writes them.
    "kiosk.settlement.pay_methods",
    "kiosk.transactions.kinds",
    "kiosk.payment_codes",
    "kiosk.telemetry",
    "kiosk.catalog",
    "kiosk.clock",
    "kiosk.command_line",
    "kiosk.config",
    "kiosk.errors",
    "kiosk.i18n",
    "kiosk.money",
    "kiosk.service_notify",
    "kiosk.station_keys",
    "kiosk.storage",
)
# The platform simulator speaks the platform's wire and shares kiosk's leaf modules.
PLATFORM_SIM_CONTRACTS = (
    "kiosk.platform.models",
    "kiosk.clock",
    "kiosk.command_line",
    "kiosk.errors",
    "kiosk.money",
    "kiosk.payment_codes",
    "kiosk.station_keys",
    "kiosk.storage",
)
EVERYTHING = ("",)

# For each package: the modules of this project it may import (prefixes; "" is the whole
# package). A package not named here may not be imported at all.
ALLOWED: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "kiosk": {},
    "drivers": {"kiosk": DRIVER_CONTRACTS},
    "station": {"kiosk": EVERYTHING, "drivers": EVERYTHING},
    "ui": {"kiosk": EVERYTHING, "station": EVERYTHING},
    "firmware_tools": {"kiosk": EVERYTHING, "station": EVERYTHING, "drivers": EVERYTHING},
    "backoffice": {"kiosk": BACKOFFICE_CONTRACTS},
    "simulators": {
        "kiosk": EVERYTHING,
        "drivers": EVERYTHING,
        "station": EVERYTHING,
        "ui": EVERYTHING,
        "firmware_tools": EVERYTHING,
        "backoffice": EVERYTHING,
        "simulators.platform": EVERYTHING,
    },
    "simulators.platform": {
        "kiosk": PLATFORM_SIM_CONTRACTS,
        # The prepaid card's credit MAC: the platform issues what the card verifies.
        "drivers": ("drivers.smartcard.prepaid_mac",),
    },
}

# Libraries that talk to hardware (or to the MicroPython board from inside) and Kivy.
HARDWARE = frozenset(
    {"smartcard", "pkcs11", "serial", "evdev", "usb", "hid", "machine", "micropython"}
    | {"mpremote", "RPi", "gpiozero", "pyudev"}
)
KIVY = "kivy"
KIVY_ALLOWED = ("ui", "simulators")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str


def _module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    """Every module `path` imports: absolute names, relative ones resolved; for `from P
    import N` the module P.N when N is a module, else P."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = _module_of(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(path, node.lineno, sub if _is_module(root, sub) else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(path, node.lineno, node.args[0].value)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(p == "" or module == p or module.startswith(p + ".") for p in prefixes)


def area_of(module: str) -> str | None:
    """The most specific package of the rules (ALLOWED) that module is in, if any."""
    areas = [a for a in ALLOWED if module == a or module.startswith(a + ".")]
    return max(areas, key=len, default=None)


def violations(root: Path, packages: tuple[str, ...] = PRODUCT) -> list[str]:
    """One line per forbidden import: `file:line: package imports module (rule)`."""
    found = []
    for package in packages:
        allowed = ALLOWED[package]
        for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
            if area_of(_module_of(root, path)) != package:
                continue  # a sub-package with rules of its own
            for imp in sorted(imports_of(root, path), key=lambda i: i.line):
                top = imp.module.split(".")[0]
                target = area_of(imp.module)
                where = f"{imp.path.relative_to(root)}:{imp.line}"
                if package in SHIPPED and top in NOT_SHIPPED:
                    found.append(f"{where}: {package}/ imports {imp.module} (never shipped)")
                elif target is not None and target != package:
                    if not _within(imp.module, allowed.get(target, ())):
                        found.append(
                            f"{where}: {package}/ imports {imp.module} (upward or sideways)"
                        )
                elif top == KIVY and package.split(".")[0] not in KIVY_ALLOWED:
                    found.append(f"{where}: {package}/ imports {imp.module} (Kivy is ui/ only)")
                elif top in HARDWARE and package == "kiosk":
                    found.append(f"{where}: kiosk/ imports {imp.module} (a hardware library)")
    return found


# The terminal's engine and database are private to the core (kiosk/): the one documented
# test hook into the engine is tests/fixtures/engine_hook.py.
PRIVATE_OF_THE_CORE = ("_engine", "_conn")
REACH_IN_ALLOWED = ("kiosk", "tests/fixtures/engine_hook.py")


def reach_ins(root: Path, folders: tuple[str, ...]) -> list[str]:
    """`file:line: expression` for every read of a terminal's or an engine's private
    engine or connection outside kiosk/ (self's own attributes are not reach-ins)."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            if any(where == a or where.startswith(a + "/") for a in REACH_IN_ALLOWED):
                continue
            for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
                if not isinstance(node, ast.Attribute) or node.attr not in PRIVATE_OF_THE_CORE:
                    continue
                owner = ast.unparse(node.value)
                if owner.endswith(("terminal", "engine")) or node.attr == "_engine":
                    found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_nothing_outside_the_core_reaches_the_terminals_engine_or_database() -> None:
    folders = tuple(p for p in PRODUCT if p not in ("kiosk", "simulators.platform")) + ("tests",)
    found = reach_ins(ROOT, folders)
    # The one white-box exception, said beside it in the test.
    without_lines = [(f.split(":")[0], f.rsplit(": ", 1)[1]) for f in found]
    assert without_lines == [("tests/test_journal_completeness.py", "engine._conn")], "\n".join(
        found
    )


def test_a_reach_into_the_terminal_is_named(tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "screen.py").write_text(
        "def show(terminal, self):\n"
        "    self._conn.execute('SELECT 1')\n"
        "    return terminal._engine.store, terminal._conn\n"
    )
    assert sorted(reach_ins(tmp_path, ("ui",))) == [
        "ui/screen.py:3: terminal._conn",
        "ui/screen.py:3: terminal._engine",
    ]


def test_every_import_of_the_product_points_down() -> None:
    found = violations(ROOT)
    assert found == [], "imports against the layering:\n" + "\n".join(found)


def test_the_checker_names_an_upward_import_with_its_file_and_line(tmp_path: Path) -> None:
    for package in PRODUCT:
        (tmp_path / package.replace(".", "/")).mkdir(parents=True, exist_ok=True)
        (tmp_path / package.replace(".", "/") / "__init__.py").write_text("")
    (tmp_path / "station" / "composition.py").write_text("")
    (tmp_path / "simulators" / "platform" / "server.py").write_text(
        "from kiosk.platform.models import Bill\nfrom kiosk.terminal import Terminal\n"
    )
    (tmp_path / "simulators" / "demo.py").write_text(
        "import kivy.app\nfrom kiosk.terminal import Terminal\n"
        "from simulators.platform import server\n"
    )
    (tmp_path / "ui" / "app.py").write_text(
        "def demo():\n    from simulators.platform.server import Simulator\n"
    )
    (tmp_path / "station" / "cli.py").write_text("import tests.fixtures\n")
    (tmp_path / "kiosk" / "terminal.py").write_text("")
    (tmp_path / "kiosk" / "devices.py").write_text("")
    (tmp_path / "kiosk" / "core.py").write_text(
        '"""A core module reaching up."""\n'
        "import json\n"
        "from kiosk import devices\n"
        "\n"
        "def build():\n"
        "    from station.composition import build_terminal\n"
        "    return build_terminal\n"
    )
    (tmp_path / "kiosk" / "lazy.py").write_text(
        "import importlib\nimport smartcard.System\nimportlib.import_module('drivers.x')\n"
    )
    (tmp_path / "drivers" / "printer.py").write_text(
        "from kiosk.devices import Printer\nfrom kiosk import terminal\nfrom . import printer\n"
    )
    (tmp_path / "backoffice" / "view.py").write_text("import kivy.app\nfrom ..ui import app\n")
    (tmp_path / "kiosk" / "clean.py").write_text("from . import devices\nimport kiosk.terminal\n")

    assert sorted(violations(tmp_path)) == sorted(
        [
            "kiosk/core.py:6: kiosk/ imports station.composition (upward or sideways)",
            "kiosk/lazy.py:2: kiosk/ imports smartcard.System (a hardware library)",
            "kiosk/lazy.py:3: kiosk/ imports drivers.x (upward or sideways)",
            "drivers/printer.py:2: drivers/ imports kiosk.terminal (upward or sideways)",
            "backoffice/view.py:1: backoffice/ imports kivy.app (Kivy is ui/ only)",
            "backoffice/view.py:2: backoffice/ imports ui.app (upward or sideways)",
            "station/cli.py:1: station/ imports tests.fixtures (never shipped)",
            "ui/app.py:2: ui/ imports simulators.platform.server (never shipped)",
            "simulators/platform/server.py:2: simulators.platform/ imports kiosk.terminal "
            "(upward or sideways)",
        ]
    )
