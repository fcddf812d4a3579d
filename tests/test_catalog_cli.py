"""kiosk-tool catalog: sign, verify, show and install from a technician's or operator's shell."""

import argparse
import json
from pathlib import Path

import pytest

from firmware_tools.commands import catalog as catalog_commands
from kiosk.command_line import run_command

REPO = Path(__file__).resolve().parents[1]
DEV_KEY = REPO / "tests" / "keys" / "operator-dev-key.pem"
SHIPPED = REPO / "kiosk" / "catalog" / "data"


def kiosk_tool(*argv: str) -> int:
    # Only this command group: the test must not depend on the other groups' imports.
    parser = argparse.ArgumentParser(prog="kiosk-tool")
    catalog_commands.register(parser.add_subparsers())
    return run_command(parser, ["catalog", *argv])


@pytest.fixture
def newer_catalog(tmp_path: Path) -> Path:
    document = json.loads((SHIPPED / "catalog.json").read_bytes())
    document.update(version="2026.12", published="2026-11-23")
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def test_sign_then_verify_a_catalog(
    newer_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kiosk_tool("sign", "--key", str(DEV_KEY), "--in", str(newer_catalog)) == 0
    sig = newer_catalog.with_name("catalog.json.sig")
    assert "signed catalog 2026.12" in capsys.readouterr().out
    assert kiosk_tool("verify", "--in", str(newer_catalog), "--sig", str(sig), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["version"] == "2026.12"
    assert report["services"] == 8
    assert len(report["operator_key_sha256"]) == 64


def test_verify_refuses_a_changed_catalog_with_one_line(
    newer_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "out.sig"
    kiosk_tool("sign", "--key", str(DEV_KEY), "--in", str(newer_catalog), "--out", str(sig))
    newer_catalog.write_bytes(newer_catalog.read_bytes().replace(b"2026.12", b"2026.13"))
    capsys.readouterr()
    assert kiosk_tool("verify", "--in", str(newer_catalog), "--sig", str(sig)) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiosk-tool: error: catalog signature does not match")
    assert err.count("\n") == 1


def test_verify_uses_the_shipped_operator_key_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = kiosk_tool(
        "verify", "--in", str(SHIPPED / "catalog.json"), "--sig", str(SHIPPED / "catalog.json.sig")
    )
    assert code == 0
    assert "signature good, catalog 2026.11" in capsys.readouterr().out


def test_sign_refuses_an_invalid_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "version": "1"}')
    assert kiosk_tool("sign", "--key", str(DEV_KEY), "--in", str(bad)) == 1
    assert "catalog field published is missing" in capsys.readouterr().err
    assert not (tmp_path / "bad.json.sig").exists()


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert kiosk_tool("verify", "--in", str(missing), "--sig", str(missing)) == 1
    assert f"catalog {missing} does not exist" in capsys.readouterr().err


def test_show_lists_services_fees_in_force_and_announced_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kiosk_tool("show", "--on", "2026-11-23") == 0
    out = capsys.readouterr().out
    assert "catalog 2026.11.1 published 2026-11-16; fees in force on 2026-11-23" in out
    assert "water-bill  Water bill  (bill, biller water)" in out
    assert "announced: from 2027-01-04 ¥0.50 flat" in out
    assert "fee: ¥1.00 flat" in out
    assert "amount: ¥10.00 to ¥2000.00; presets ¥50.00 ¥100.00 ¥200.00 ¥500.00" in out


def test_show_json_is_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        kiosk_tool("show", "--in", str(SHIPPED / "catalog.json"), "--on", "2027-01-04", "--json")
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    water = next(s for s in shown["services"] if s["code"] == "water-bill")
    assert water["fee_in_force"]["flat_fen"] == 50
    assert water["upcoming_fee_change"] is None
    assert water["account"] == {"length": 10, "prefixes": ["31"], "check": "luhn"}
    assert [s["code"] for s in shown["services"]][-1] == "mobile-topup"


def test_show_refuses_a_bad_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert kiosk_tool("show", "--on", "23/11/2026") == 1
    assert "'23/11/2026' is not a date: write it as YYYY-MM-DD" in capsys.readouterr().err


def test_install_puts_a_signed_catalog_in_force(
    newer_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "catalog.json.sig"
    kiosk_tool("sign", "--key", str(DEV_KEY), "--in", str(newer_catalog), "--out", str(sig))
    capsys.readouterr()
    store = tmp_path / "data" / "catalog"
    args = ["install", "--dir", str(store), "--in", str(newer_catalog), "--sig", str(sig)]
    assert kiosk_tool(*args, "--today", "2026-11-23", "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2026.12"
    assert kiosk_tool(*args, "--today", "2026-11-23") == 1
    assert "not newer than version 2026.12 in force" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("sign", "verify", "show", "install"):
        with pytest.raises(SystemExit) as exited:
            kiosk_tool(command, "--help")
        assert exited.value.code == 0
        assert "usage: kiosk-tool catalog" in capsys.readouterr().out
