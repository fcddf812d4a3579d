"""The terminal's and the technician's commands, as a person runs them."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.cli import main as tool_main
from kiosk.config import load_config
from station.cli import main as kiosk_main
from tests.soak.worker import main as worker_main

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def init_config(tmp_path: Path, url: str, token: str = "software") -> Path:
    out = tmp_path / "kiosk.toml"
    code = tool_main(
        [
            "config",
            "init",
            "--sim",
            "--token",
            token,
            "--data",
            str(tmp_path / "data"),
            "--platform",
            url,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def bought_float(platform_sim: Any, config: Path | str) -> None:
    """The credit line is zero: the station buys float at the outlet before it sells."""
    platform_sim.fund(load_config(Path(config)).station.institution_no)


def test_config_init_writes_a_complete_commented_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init_config(tmp_path, "http://127.0.0.1:9")
    text = path.read_text(encoding="utf-8")
    assert "# 机构号" in text or "机构号" in text
    config = load_config(path)
    assert config.token.kind == "software" and Path(config.token.key_file).exists()
    assert "wrote" in capsys.readouterr().out


def test_config_init_refuses_to_overwrite_and_needs_sim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init_config(tmp_path, "http://127.0.0.1:9")
    capsys.readouterr()
    args = [
        "config",
        "init",
        "--sim",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "kiosk.toml"),
    ]
    assert tool_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exists already" in err and "--force" in err
    assert tool_main(["config", "init", "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 1
    assert "--sim" in capsys.readouterr().err


def test_config_check_names_the_wrong_key_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init_config(tmp_path, "http://127.0.0.1:9")
    path.write_text(path.read_text(encoding="utf-8").replace("retries = 3", "retry = 3"))
    capsys.readouterr()
    assert tool_main(["config", "check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown config key 'platform.retry'" in err


def run_command(entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a console script (module:function) in its own process, as a technician would."""
    module, function = entry.split(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.softhsm
def test_a_softhsm_terminal_soaks_resumes_closes_its_day_and_its_journal_verifies(
    tmp_path: Path, platform_sim: Any
) -> None:
    # Own processes: a SoftHSM2 terminal binds the PKCS#11 module of its process to its own
    # token directory (SOFTHSM2_CONF), which must not become this test session's.
    tool = "firmware_tools.cli:main"
    config = str(tmp_path / "kiosk.toml")
    done = run_command(
        tool, "config", "init", "--sim", "--token", "softhsm", "--data", str(tmp_path / "data"),
        "--platform", platform_sim.url, "--out", config,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert load_config(Path(config)).token.kind == "pkcs11"
    bought_float(platform_sim, config)
    soak = ("tests.soak.worker:main", "--config", config, "--residents", "6", "--seed", "4")
    done = run_command(*soak)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["residents"] == 6
    # Run again on the same data: the soak resumes after its last resident (none is new).
    done = run_command(*soak)
    assert json.loads(done.stdout.strip().splitlines()[-1])["residents"] == 6

    done = run_command(tool, "day", "close", "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["type"] == "day_close" and report["signer"] == "pkcs11" and "sig" in report

    journal, cert = tmp_path / "journal.jsonl", tmp_path / "cert.pem"
    done = run_command(tool, "journal", "export", "--config", config, "--out", str(journal))
    assert done.returncode == 0, done.stderr
    done = run_command(tool, "token", "cert", "--config", config, "--out", str(cert))
    assert done.returncode == 0, done.stderr
    done = run_command(tool, "journal", "verify", str(journal), "--cert", str(cert))
    assert done.returncode == 0 and "sound" in done.stdout

    close = next(
        json.loads(line)
        for line in journal.read_text(encoding="utf-8").splitlines()
        if '"tx_close"' in line and '"paid"' in line
    )
    assert close["signer"] == "pkcs11"


def test_kiosk_run_once_starts_recovers_and_stops(
    tmp_path: Path, platform_sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init_config(tmp_path, platform_sim.url)
    bought_float(platform_sim, config)
    assert kiosk_main(["run", "--config", str(config), "--once"]) == 0
    assert "in service" in capsys.readouterr().out


def test_a_missing_configuration_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kiosk_main(["run", "--config", str(tmp_path / "absent.toml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kiosk-tool config init" in err


def test_a_receipt_is_reprinted_by_number_and_an_unknown_number_is_one_line(
    tmp_path: Path, platform_sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init_config(tmp_path, platform_sim.url)
    bought_float(platform_sim, config)
    assert worker_main(["--config", str(config), "--residents", "3", "--seed", "9"]) == 0
    receipts = tmp_path / "data" / "receipts"
    first = sorted(receipts.glob("*.txt"))[0].name.split("%")[0]
    capsys.readouterr()
    assert tool_main(["receipt", "reprint", "--config", str(config), "--number", first]) == 0
    assert "copy" in capsys.readouterr().out
    assert any("副本" in p.read_text(encoding="utf-8") for p in receipts.glob("*.txt"))
    assert tool_main(["receipt", "reprint", "--config", str(config), "--number", "T0001-999"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no receipt number T0001-999" in err
