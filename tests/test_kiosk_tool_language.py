"""kiosk-tool speaks Chinese first and English when the locale asks; it completes in the
shell with argcomplete; `maintenance record` journals a signed visit the outbox carries.

The tool runs as the technician runs it: as a process (python -m firmware_tools.cli) with
the environment a shell gives it, or in-process through main() for the journaling checks,
against a terminal made by `kiosk-tool config init --sim` and the real platform simulator.
"""

import datetime
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.cli import main as tool_main
from firmware_tools.tool_language import tool_language
from kiosk.config import load_config
from kiosk.diagnostics.visit import VisitRefused, make_visit, quarter_after
from kiosk.journal.record_types import RecordType
from kiosk.telemetry import Outbox
from tests.fixtures.zones import machine_date_off_the_stations, stations_today

ROOT = Path(__file__).resolve().parents[1]
CHINESE = {"LANG": "C.UTF-8"}  # what a fresh shell on the terminal has: no English asked for
ENGLISH = {"LANG": "en_US.UTF-8"}


def run_tool(*args: str, env: dict[str, str], **extra: Any) -> subprocess.CompletedProcess[str]:
    """kiosk-tool as a process with the shell's locale `env` (and any other variables in
    extra); the suite's conftest asks for English (LANGUAGE=en), a technician's shell does not."""
    clean = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
        env={**clean, **env, **extra},
    )


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({}, "zh_CN"),
        ({"LANG": "C.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANGUAGE": "en:zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LANGUAGE": "zh_CN", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LANGUAGE": "", "LC_MESSAGES": "en_US"}, "en"),
    ],
)
def test_chinese_unless_the_locale_names_english(environ: dict[str, str], language: str) -> None:
    assert tool_language(environ) == language


def test_help_is_chinese_by_default_and_english_by_locale() -> None:
    chinese = run_tool("--help", env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    assert chinese.stdout.startswith("用法：kiosk-tool")
    assert "显示本帮助并退出" in chinese.stdout
    assert "自检全部设备与服务" in chinese.stdout  # a group's help, from kiosk_tool.po
    assert "把设备维护记录单写入签名流水" in chinese.stdout
    english = run_tool("--help", env=ENGLISH)
    assert english.stdout.startswith("usage: kiosk-tool")
    assert "self-test every device and service" in english.stdout
    sub = run_tool("maintenance", "record", "--help", env=CHINESE)
    assert "发现的故障" in sub.stdout and "维修费用承担方" in sub.stdout


def test_bad_input_gets_one_line_in_the_tools_language(tmp_path: Path) -> None:
    args = ("maintenance", "record", "--config", str(tmp_path / "k.toml"), "--by", "李工")
    args += ("--fault", "卡纸", "--repair", "清理", "--visited", "2026-13-01")
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 1
    assert chinese.stderr == (
        "kiosk-tool: 错误: --visited '2026-13-01' 不是日期：请写成 YYYY-MM-DD\n"
    )
    english = run_tool(*args, env=ENGLISH)
    assert english.stderr == (
        "kiosk-tool: error: --visited '2026-13-01' is not a date: write it as YYYY-MM-DD\n"
    )
    missing = run_tool("maintenance", "record", env=CHINESE)
    assert missing.returncode == 2 and "缺少以下必需参数" in missing.stderr
    assert "Traceback" not in chinese.stderr + english.stderr + missing.stderr


def test_shell_completion_offers_the_groups_and_options(tmp_path: Path) -> None:
    out = tmp_path / "completions"
    for line, expected in (
        ("kiosk-tool mai", {"maintenance"}),
        ("kiosk-tool maintenance record --cost", {"--cost-bearer"}),
        ("kiosk-tool maintenance record --cost-bearer w", {"warranty"}),
    ):
        done = run_tool(
            env=CHINESE,
            _ARGCOMPLETE="1",
            _ARGCOMPLETE_IFS="\n",
            _ARGCOMPLETE_STDOUT_FILENAME=str(out),
            COMP_LINE=line,
            COMP_POINT=str(len(line)),
        )
        assert done.returncode == 0, done.stderr
        offered = {word.strip() for word in out.read_text().split("\n") if word.strip()}
        assert offered == expected, line


def test_the_next_inspection_defaults_to_a_quarter_and_bad_details_are_refused() -> None:
    assert quarter_after(datetime.date(2026, 1, 10)) == datetime.date(2026, 4, 10)
    assert quarter_after(datetime.date(2026, 11, 30)) == datetime.date(2027, 2, 28)
    assert quarter_after(datetime.date(2026, 8, 31)) == datetime.date(2026, 11, 30)
    base: dict[str, Any] = {
        "visited": datetime.date(2026, 1, 10),
        "technician": "李工",
        "fault": "卡纸",
        "repair": "清理",
        "spare_unit": None,
        "cost_bearer": "station",
    }
    with pytest.raises(VisitRefused, match="cost bearer 'me'") as refused:
        make_visit(**{**base, "cost_bearer": "me"})
    assert refused.value.message_id.startswith("cost bearer {value!r}")
    with pytest.raises(VisitRefused, match="fault: describe it"):
        make_visit(**{**base, "fault": "  "})
    with pytest.raises(VisitRefused, match="next inspection 2026-01-10"):
        make_visit(**{**base, "next_inspection": datetime.date(2026, 1, 10)})
    assert make_visit(**base).next_inspection == datetime.date(2026, 4, 10)


@pytest.fixture
def config(tmp_path: Path, platform_sim: Any) -> Path:
    out = tmp_path / "kiosk.toml"
    init = ["config", "init", "--sim", "--token", "software", "--data", str(tmp_path / "data")]
    assert tool_main([*init, "--platform", platform_sim.url, "--out", str(out)]) == 0
    return out


def test_a_maintenance_visit_is_journaled_signed_and_waits_in_the_outbox(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGUAGE", "zh_CN")
    args = ["maintenance", "record", "--config", str(config), "--by", "李工"]
    args += ["--fault", "打印机卡纸", "--repair", "更换切刀", "--spare-unit", "BJ-007"]
    args += ["--cost-bearer", "warranty", "--visited", "2026-05-01"]
    assert tool_main(args) == 0
    said = capsys.readouterr().out
    assert "2026-05-01 的设备维护已记入签名流水第" in said
    assert "费用由厂商保修承担" in said and "下次巡检 2026-08-01" in said
    monkeypatch.setenv("LANGUAGE", "en")
    with machine_date_off_the_stations(monkeypatch):  # the visit's day is the station's
        assert tool_main([*args[:4], "--by", "Li", "--fault", "none", "--repair", "inspection",
                          "--cost-bearer", "none", "--json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["cost_bearer"] == "none" and data["spare_unit"] is None
    assert data["visited"] == stations_today().isoformat()
    terminal_config = load_config(config)
    conn = sqlite3.connect(terminal_config.database_path)
    try:
        rows = conn.execute(
            "SELECT seq, record FROM journal WHERE type = ? ORDER BY seq",
            (RecordType.MAINTENANCE_VISIT,),
        ).fetchall()
        records = [json.loads(record) for _, record in rows]
        assert [r["technician"] for r in records] == ["李工", "Li"]
        first = records[0]
        assert (first["fault"], first["repair"], first["spare_unit"]) == (
            "打印机卡纸",
            "更换切刀",
            "BJ-007",
        )
        assert (first["cost_bearer"], first["next_inspection"]) == ("warranty", "2026-08-01")
        assert first["sig"] and first["cert_sha256"]  # signed by the station's token
        pending = Outbox(conn).pending(0, 100)
        assert {p.seq for p in pending} >= {seq for seq, _ in rows}
    finally:
        conn.close()


def test_diagnose_says_its_verdicts_and_next_steps_in_chinese(config: Path, tmp_path: Path) -> None:
    args = ("diagnose", "--config", str(config), "--unattended", "--quiet", "--only", "printer")
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    assert "[通过] printer.status: 打印机就绪" in chinese.stdout
    assert "[跳过] printer.test_receipt: " in chinese.stdout
    assert "-> 在现场不带 --unattended 运行 kiosk-tool diagnose" in chinese.stdout
    assert "结论：可以恢复服务（1 通过, 0 警告, 0 失败, 1 跳过）" in chinese.stdout
    english = run_tool(*args, env=ENGLISH)
    assert "[PASS] printer.status: printer ready" in english.stdout
    assert "VERDICT: may go back into service (1 pass, 0 warn, 0 fail, 1 skipped)" in english.stdout
