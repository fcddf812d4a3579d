"""kiosk-tool's operator commands as a technician runs them: deposit, cash, voucher, day close
--json, with the screen's rules and one clear line for bad input.

A terminal configured by `kiosk-tool config init --sim` (software token, simulated devices)
against the real platform simulator; the operator card is a simulated card in the
terminal's own simulated reader (its state file under the data directory).
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.cli import main as tool_main
from kiosk.config import load_config
from simulators.smartcard import SimulatedCardReader
from station.composition import simulator_dir
from tests.soak.worker import main as worker_main

PIN = "135790"
ROOT = Path(__file__).resolve().parents[1]
ISSUE_KEYS = (
    "business_day",
    "opening_float_fen",
    "deposits_fen",
    "debits_fen",
    "closing_float_fen",
    "platform_float_fen",
    "balanced",
    "cash_expected_fen",
    "vouchers_issued_fen",
    "vouchers_redeemed_fen",
)


@pytest.fixture
def config(tmp_path: Path, platform_sim: Any) -> Path:
    out = tmp_path / "kiosk.toml"
    assert (
        tool_main(
            [
                "config",
                "init",
                "--sim",
                "--token",
                "software",
                "--data",
                str(tmp_path / "data"),
                "--platform",
                platform_sim.url,
                "--out",
                str(out),
            ]
        )  # fmt: skip
        == 0
    )
    return out


@pytest.fixture
def operator_pin(tmp_path: Path) -> Path:
    pin_file = tmp_path / "operator.pin"
    pin_file.write_text(PIN + "\n", encoding="ascii")
    return pin_file


def operator_card_in_reader(config: Path) -> None:
    """The station operator puts their card into the terminal's (simulated) reader."""
    reader = SimulatedCardReader(simulator_dir(load_config(config)) / "cards.sqlite3")
    try:
        try:
            reader.operator_card("8700000001")
        except ValueError:  # issued the first time
            reader.create_operator_card("8700000001", "OP-0007", PIN)
        reader.remove_card()
        reader.insert_operator_card("8700000001")
    finally:
        reader.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """kiosk-tool in its own process, as a technician runs it (its stderr is the person's)."""
    done = subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    data = json.loads(done.stdout) if done.returncode == 0 and "--json" in args else done.stdout
    return done.returncode, data, done.stderr


def test_a_deposit_is_recorded_from_the_command_line_with_the_screens_rules(
    config: Path, platform_sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config)
    code, _, err = run(capsys, "deposit", "record", "--config", cfg, "--amount-fen", "49999",
                       "--slip", "PS-0001")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "at least ¥500.00" in err
    code, _, err = run(capsys, "deposit", "record", "--config", cfg, "--amount-fen", "5e4",
                       "--slip", "PS-0001")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "not a whole number of fen" in err
    code, _, err = run(capsys, "deposit", "record", "--config", cfg, "--amount-fen", "50000",
                       "--slip", "?")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "not a deposit slip number" in err

    code, entry, _ = run(capsys, "deposit", "record", "--config", cfg, "--amount-fen", "200000",
                         "--slip", "PS-0001", "--by", "Li Wei", "--json")  # fmt: skip
    assert code == 0
    assert (entry["state"], entry["recorded_by"], entry["role"]) == (
        "pending",
        "Li Wei",
        "technician",
    )
    platform_sim.confirm_deposit(entry["deposit_key"])
    code, listing, _ = run(capsys, "deposit", "list", "--config", cfg, "--json")
    assert code == 0
    assert listing["balance_fen"] == 200_000 and listing["pending_deposits_fen"] == 0
    assert [d["state"] for d in listing["deposits"]] == ["confirmed"]


def test_day_close_json_carries_the_float_check_cash_and_vouchers(
    config: Path, platform_sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    platform_sim.fund(load_config(config).station.institution_no)
    # Cash only: a payment by phone is funded by its order, not by the float it checks.
    assert (
        worker_main(["--config", str(config), "--residents", "3", "--seed", "9", "--qr-p", "0"])
        == 0
    )
    code, day, err = run(capsys, "day", "close", "--config", str(config), "--json")
    assert code == 0, err
    assert set(ISSUE_KEYS) <= set(day)
    assert day["balanced"] is True and day["closed_by"] == "technician:kiosk-tool"
    assert day["debits_fen"] == day["paid_fen"] > 0
    assert day["closing_float_fen"] == day["platform_float_fen"]
    code, text, _ = run(
        capsys, "day", "sheet", "--config", str(config), "--day", day["business_day"]
    )
    assert code == 0 and "printed" in text


def test_the_cash_box_is_collected_and_a_voucher_paid_only_with_the_operators_card(
    config: Path, platform_sim: Any, operator_pin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config)
    platform_sim.fund(load_config(config).station.institution_no)
    assert worker_main(["--config", cfg, "--residents", "4", "--seed", "3"]) == 0
    operator_card_in_reader(config)
    code, status, _ = run(capsys, "cash", "status", "--config", cfg, "--json")
    assert code == 0 and status["cash_expected_fen"] > 0

    code, _, err = run(capsys, "cash", "collect", "--config", cfg, "--count", "note-100=1")
    assert code == 1 and err.count("\n") == 1 and "may not collect the cash box" in err
    code, _, err = run(capsys, "cash", "collect", "--config", cfg, "--count", "note-7=1",
                       "--pin-file", str(operator_pin))  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "is not a count" in err

    code, collected, err = run(capsys, "cash", "collect", "--config", cfg, "--count",
                               "note-100=1", "--pin-file", str(operator_pin), "--json")  # fmt: skip
    assert code == 0, err
    assert collected["by"] == "OP-0007" and collected["counted_fen"] == 100_00
    assert collected["discrepancy_fen"] == 100_00 - collected["expected_fen"]
    code, status, _ = run(capsys, "cash", "status", "--config", cfg, "--json")
    assert status["cash_expected_fen"] == 0

    code, _, err = run(capsys, "voucher", "pay", "ABCD-EFGH-JKLM-NPQR", "--config", cfg,
                       "--pin-file", str(operator_pin))  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "not known at this station" in err
    code, _, err = run(capsys, "voucher", "pay", "ABCD-EFGH-JKLM-NPQR", "--config", cfg)
    assert code == 1 and "may not pay out a voucher" in err
