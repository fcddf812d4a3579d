"""kiosk-tool says its result, progress and error lines with values in Chinese first.

Each command runs as the technician runs it: a process (python -m firmware_tools.cli) with
LANG=C.UTF-8 (a fresh shell on the terminal: Chinese) or LANG=en_US.UTF-8 (English), against
real files: a signed journal export, a signed update bundle installed with pip into a slot, a
bundle fetched over HTTP through TUF, a terminal made by `kiosk-tool config init --sim` with
the real platform simulator. --json stays English and machine-readable.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.cli import main as tool_main
from tests.fixtures.journal_bench import JournalBench
from tests.fixtures.updates import HARDWARE, BundleMaker, ReleaseKeys, UpdateServer
from tests.test_kiosk_tool_language import CHINESE, ENGLISH, run_tool

ROOT = Path(__file__).resolve().parents[1]


def no_traceback(*done: subprocess.CompletedProcess[str]) -> None:
    for process in done:
        assert "Traceback" not in process.stdout + process.stderr


# ------------------------------------------------------------------ journal verify


@pytest.fixture
def export(journal_bench: JournalBench) -> Path:
    journal_bench.pay(1)
    journal_bench.pay(2)
    journal_bench.close_day()
    path = journal_bench.directory / "journal.jsonl"
    path.write_text("".join(journal_bench.export_lines()), encoding="utf-8")
    return path


def test_journal_verify_of_a_sound_export(export: Path, journal_bench: JournalBench) -> None:
    args = ("journal", "verify", str(export), "--cert", str(journal_bench.cert_file))
    seq, digest = journal_bench.journal.head()
    chinese = run_tool(*args, env=CHINESE)
    assert (chinese.returncode, chinese.stderr) == (0, "")
    assert chinese.stdout.splitlines() == [
        f"流水完好：8 条记录，链头 {seq}:{digest}",
        "警告：4 条记录由演示用软件签名器签名，而非 USBKey",
    ]
    english = run_tool(*args, env=ENGLISH)
    assert english.stdout.splitlines() == [
        f"journal sound: 8 records, head {seq}:{digest}",
        "warning: 4 records were signed by the demo software signer, not a token",
    ]
    machine = run_tool(*args, "--json", env=CHINESE)
    report = json.loads(machine.stdout)
    assert report["warnings"] == [
        "4 records were signed by the demo software signer, not a token"
    ]  # --json is English whatever the shell's language


def test_journal_verify_of_a_tampered_export(export: Path, journal_bench: JournalBench) -> None:
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[:4] + lines[5:]), encoding="utf-8")  # record 5 taken out
    args = ("journal", "verify", str(export), "--cert", str(journal_bench.cert_file))
    chinese = run_tool(*args, env=CHINESE)
    assert (chinese.returncode, chinese.stdout) == (1, "")
    assert chinese.stderr == (
        "kiosk-tool: 错误: 流水在第 5 条记录处不完整：缺少第 5 条记录；"
        "请保持导出文件和终端原样并上报\n"
    )
    english = run_tool(*args, env=ENGLISH)
    assert english.stderr == (
        "kiosk-tool: error: journal unsound at record 5: record 5 is missing; keep the export "
        "and the terminal as they are and report it\n"
    )
    edited = export.read_text(encoding="utf-8").replace('"seq":2,', '"seq": 2,', 1)
    export.write_text(edited, encoding="utf-8")
    damaged = run_tool(*args, env=CHINESE)
    assert "第 2 行不是规范 JSON 形式：导出文件被改动过" in damaged.stderr
    no_traceback(chinese, english, damaged)


# ------------------------------------------------------------------ errors with values


def test_an_error_with_a_value_is_one_chinese_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    args = ("journal", "verify", str(tmp_path / "x.jsonl"), "--cert", str(missing))
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 1
    assert (
        chinese.stderr == f"kiosk-tool: 错误: 无法读取证书 {missing}：No such file or directory\n"
    )
    english = run_tool(*args, env=ENGLISH)
    assert english.stderr == (
        f"kiosk-tool: error: cannot read certificate {missing}: No such file or directory\n"
    )
    bad = run_tool("journal", "export", "--config", "x", "--out", "-", "--upto", "0", env=CHINESE)
    assert bad.returncode == 2 and "'0' 不是记录序号（1、2、3 ……）" in bad.stderr
    no_traceback(chinese, english, bad)


# ------------------------------------------------------------------ update install and fetch


def _update_root(tmp_path: Path, release_keys: ReleaseKeys) -> Path:
    root = tmp_path / "root"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "release.pub.pem").write_bytes(release_keys.public_pem)
    (root / "hardware").write_text(HARDWARE + "\n")
    return root


def test_update_install_says_its_progress_and_result_in_chinese(
    tmp_path: Path, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    root = _update_root(tmp_path, release_keys)
    bundle = make_bundle("1.0.0")
    chinese = run_tool("update", "install", "--in", str(bundle), "--root", str(root), env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    assert chinese.stdout.splitlines() == [
        f"[1/4] 正在校验 {bundle.name} 的发布签名和每个文件",
        "[2/4] 正在解压到分区 a，并再次校验每个字节",
        "[3/4] 正在把 1 个 wheel 安装到分区 a",
        "[4/4] 正在写入存储，并把下次启动切换到新分区",
        "已把 1.0.0 安装到分区 a；这是本终端的第一个软件：请重启（systemctl restart kiosk）",
    ]
    newer = make_bundle("1.1.0")
    english = run_tool("update", "install", "--in", str(newer), "--root", str(root), env=ENGLISH)
    assert english.returncode == 0, english.stderr
    assert english.stdout.splitlines()[2] == "[3/4] installing 1 wheels into slot b"
    assert english.stdout.splitlines()[-1] == (
        "installed 1.1.0 into slot b; restart the terminal (systemctl restart kiosk); it must "
        "report healthy within 3 starts or it rolls back to a"
    )
    on_trial = run_tool(
        "update", "install", "--in", str(make_bundle("1.2.0")), "--root", str(root), env=CHINESE
    )
    assert on_trial.returncode == 1
    assert on_trial.stderr == (
        "kiosk-tool: 错误: 版本 1.1.0 仍在试运行：请先确认（'kiosk-tool update confirm'）或回退，"
        "再安装其他版本\n"
    )
    status = run_tool("update", "status", "--root", str(root), env=CHINESE)
    assert "正在运行分区 b：版本 1.1.0" in status.stdout
    assert "  试运行中：1.1.0，已用 0 / 3 次启动；尚未确认正常，将回退到分区 a" in status.stdout
    refused = run_tool("update", "confirm", "--root", str(root), "--json", env=CHINESE)
    assert json.loads(refused.stdout) == {"confirmed": "1.1.0"}  # --json: as it was
    again = run_tool("update", "confirm", "--root", str(root), env=CHINESE)
    assert again.stdout == "没有试运行中的版本：无需确认\n"
    older = run_tool(
        "update", "install", "--in", str(make_bundle("1.0.5")), "--root", str(root), env=CHINESE
    )
    assert older.stderr == (
        "kiosk-tool: 错误: 升级包 1.0.5 不比已安装的 1.1.0 新：升级只能向前；"
        "要回退请用 'kiosk-tool update rollback'\n"
    )
    no_traceback(chinese, english, on_trial, status, again, older)


def test_update_fetch_says_its_download_progress_in_chinese(
    tmp_path: Path,
    update_server: UpdateServer,
    make_bundle: BundleMaker,
    release_keys: ReleaseKeys,
) -> None:
    bundle = make_bundle("1.2.0")
    update_server.publish(bundle.name, bundle.read_bytes())
    root = _update_root(tmp_path, release_keys)
    shutil.copy(update_server.first_root, root / "keys" / "tuf-root.json")
    args: tuple[str, ...] = ("update", "fetch", "--url", update_server.url, "--target", bundle.name)
    args += ("--root", str(root), "--spool", str(tmp_path / "spool"))
    chinese = run_tool(*args, "--out", str(tmp_path / "zh"), env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    lines = chinese.stdout.splitlines()
    assert lines[0].startswith(f"正在下载 {bundle.name}：") and "MB）" in lines[0]
    assert lines[-2].startswith(f"正在下载 {bundle.name}：100%（")
    assert lines[-1] == f"已下载 {bundle.name} 到 {tmp_path / 'zh' / bundle.name}；下一步请安装"
    english = run_tool(*args, "--out", str(tmp_path / "en"), env=ENGLISH)
    assert english.stdout.splitlines()[-2].startswith(f"downloading {bundle.name}: 100% (")
    assert english.stdout.splitlines()[-1].startswith(f"fetched {bundle.name} into ")
    no_traceback(chinese, english)


# ------------------------------------------------------------------ a terminal: deposit, diagnose


@pytest.fixture
def config(tmp_path: Path, platform_sim: Any) -> Path:
    out = tmp_path / "kiosk.toml"
    init = ["config", "init", "--sim", "--token", "software", "--data", str(tmp_path / "data")]
    assert tool_main([*init, "--platform", platform_sim.url, "--out", str(out)]) == 0
    return out


def test_deposit_record_and_its_refusal_in_chinese(config: Path) -> None:
    base = ("deposit", "record", "--config", str(config), "--by", "李工")
    chinese = run_tool(*base, "--amount-fen", "200000", "--slip", "PS-0001", env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    assert chinese.stdout.startswith("存款凭证 PS-0001 的续费 ¥2000.00 已由 李工 登记：")
    english = run_tool(*base, "--amount-fen", "150000", "--slip", "PS-0002", env=ENGLISH)
    assert english.stdout.startswith("deposit of ¥1500.00 on slip PS-0002 recorded by 李工: ")
    not_fen = run_tool(*base, "--amount-fen", "5e4", "--slip", "PS-0003", env=CHINESE)
    assert not_fen.returncode == 1
    assert not_fen.stderr == (
        "kiosk-tool: 错误: --amount-fen '5e4' 不是整数分（1 元 = 100 分）：例如 50000\n"
    )
    no_traceback(chinese, english, not_fen)


def test_diagnose_details_with_values_in_chinese(config: Path) -> None:
    args = ("diagnose", "--config", str(config), "--unattended", "--quiet")
    args += ("--only", "disk.space", "--only", "disk.sd_wear")
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 0, chinese.stderr
    lines = chinese.stdout.splitlines()
    assert lines[0].startswith("[通过] disk.space: 剩余 ") and lines[0].endswith(" MB")
    assert lines[1].startswith("[跳过] disk.sd_wear: SD 卡磨损：无法获得（")
    assert lines[1].endswith(" 不存在）")
    english = run_tool(*args, env=ENGLISH)
    assert english.stdout.splitlines()[0].endswith(" MB free")
    assert "SD card wear: not available (" in english.stdout
    machine = run_tool(*args, "--json", env=CHINESE)
    details = [r["detail"] for r in json.loads(machine.stdout)["results"]]
    assert details[0].endswith(" MB free")  # --json: English, as the back office reads it
    unknown = run_tool("diagnose", "--config", str(config), "--only", "nothing", env=CHINESE)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("kiosk-tool: 错误: 没有名为 nothing 的自检项：已有的自检项为 ")
    no_traceback(chinese, english, machine, unknown)


def test_a_configuration_error_is_one_chinese_line(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[station]", "[station]\ncolour = 1", 1), encoding="utf-8")
    chinese = run_tool("config", "check", "--config", str(config), env=CHINESE)
    assert chinese.returncode == 1
    assert chinese.stderr == (
        f"kiosk-tool: 错误: {config}：未知配置项 'station.colour'：请删除或检查拼写\n"
    )
    english = run_tool("config", "check", "--config", str(config), env=ENGLISH)
    assert english.stderr == (
        f"kiosk-tool: error: {config}: unknown config key 'station.colour': remove it or "
        "check its spelling\n"
    )
    missing = run_tool("config", "check", "--config", str(config) + ".gone", env=CHINESE)
    assert missing.stderr == (
        f"kiosk-tool: 错误: 配置文件 {config}.gone 不存在：请用 'kiosk-tool config init' 创建\n"
    )
    no_traceback(chinese, english, missing)


def test_provision_says_what_is_missing_in_chinese(tmp_path: Path) -> None:
    config = tmp_path / "new.toml"
    chinese = run_tool("provision", "--config", str(config), env=CHINESE)
    assert chinese.returncode == 1
    assert chinese.stderr == (
        f"kiosk-tool: 错误: {config} 尚不存在：请给出 "
        "--institution-no, --terminal-id, --station-name, --data\n"
    )
    english = run_tool("provision", "--config", str(config), env=ENGLISH)
    assert english.stderr == (
        f"kiosk-tool: error: {config} does not exist yet: give "
        "--institution-no, --terminal-id, --station-name, --data\n"
    )


def test_receipt_verify_says_why_a_code_is_refused_in_chinese(
    journal_bench: JournalBench,
) -> None:
    args = ("receipt", "verify", "HELLO", "--cert", str(journal_bench.cert_file))
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 1
    assert chinese.stderr.startswith("kiosk-tool: 错误: 这不是缴费终端的凭条编码：须以 ")
    assert chinese.stderr.endswith(" 开头；请不要受理，留存凭条并上报\n")
    english = run_tool(*args, env=ENGLISH)
    assert english.stderr.startswith(
        "kiosk-tool: error: this is not a kiosk receipt code: it must start with "
    )
    no_traceback(chinese, english)


def test_catalog_verify_of_an_altered_catalog_in_chinese(tmp_path: Path) -> None:
    shipped = ROOT / "kiosk" / "catalog" / "data"
    altered = tmp_path / "catalog.json"
    altered.write_bytes((shipped / "catalog.json").read_bytes().replace(b"{", b"{ ", 1))
    args = ("catalog", "verify", "--in", str(altered), "--sig", str(shipped / "catalog.json.sig"))
    chinese = run_tool(*args, env=CHINESE)
    assert chinese.returncode == 1
    assert chinese.stderr == (
        "kiosk-tool: 错误: 服务目录签名不符：签名后被改动，或用了另一个密钥签名；"
        "请向运营方索取正确签名的服务目录\n"
    )
    good = run_tool("catalog", "verify", "--in", str(shipped / "catalog.json"), "--sig",
                    str(shipped / "catalog.json.sig"), env=CHINESE)  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert f"{shipped / 'catalog.json'}：签名正确，服务目录 " in good.stdout
    no_traceback(chinese, good)
