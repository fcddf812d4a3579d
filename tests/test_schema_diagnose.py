"""kiosk-tool diagnose shows the terminal database's schema version beside the software's."""

from pathlib import Path

from kiosk.diagnostics import DiagnosticContext, run_diagnostics
from kiosk.diagnostics.model import Verdict
from kiosk.i18n import translator
from kiosk.storage import open_database
from kiosk.terminal_schema import TERMINAL
from tests.fixtures.terminal import rig_config


def schema_result(data: Path) -> tuple[Verdict, str, dict[str, object]]:
    config = rig_config(data, "http://127.0.0.1:9")
    [result] = run_diagnostics(DiagnosticContext(config), only=("database.schema",)).results
    return result.verdict, result.detail, result.facts


def test_the_schema_version_is_shown_beside_the_software_s(tmp_path: Path) -> None:
    data = tmp_path / "data"
    verdict, detail, facts = schema_result(data)
    assert verdict is Verdict.PASS and "no database yet" in detail

    conn = open_database(data / "terminal.sqlite3")
    assert rig_config(data, "http://x").database_path == data / "terminal.sqlite3"
    TERMINAL.migrate(conn)
    verdict, detail, facts = schema_result(data)
    assert facts == {"schema": TERMINAL.version, "software_schema": TERMINAL.version}
    assert detail == f"schema {TERMINAL.version}, this software's"

    # After a rollback the database is one migration ahead: said, not refused.
    conn.execute(f"PRAGMA user_version = {TERMINAL.version + 1}")
    conn.close()
    verdict, detail, facts = schema_result(data)
    assert verdict is Verdict.PASS
    assert facts["schema"] == TERMINAL.version + 1
    assert f"newer than this software's {TERMINAL.version}" in detail


def test_the_title_is_in_chinese_and_english() -> None:
    assert translator("zh_CN")("Database schema version") == "数据库结构版本"
    assert translator("en")("Database schema version") == "Database schema version"
