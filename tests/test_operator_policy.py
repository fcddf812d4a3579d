"""The operator's rules as data: one low-float threshold, the role table, the session setting,
and every operator-facing message translated (zh_CN first, English ids)."""

from pathlib import Path
from typing import Any

import pytest

from kiosk.config import BusinessConfig, ConfigError, parse_config
from kiosk.i18n import translator
from kiosk.ledger import cash_box, deposits, policy
from kiosk.operator import (
    Actor,
    NotPermitted,
    Permission,
    Role,
    cash_count,
    desk,
    papers,
    roles,
    session,
)
from kiosk.platform.models import MIN_DEPOSIT_FEN
from simulators.demo.headless import ensure_demo_float
from tests.fixtures.terminal import rig_config, started_rig


def test_one_low_float_threshold_for_the_terminal_and_the_back_office() -> None:
    assert policy.LOW_FLOAT_THRESHOLD_FEN == 2 * MIN_DEPOSIT_FEN == 1_000_00
    assert BusinessConfig().low_float_threshold_fen == policy.LOW_FLOAT_THRESHOLD_FEN
    assert policy.is_low(99_999) and not policy.is_low(1_000_00)
    assert not policy.is_low(0, threshold_fen=0)  # a zero threshold never warns


def test_only_the_operator_handles_the_stations_cash() -> None:
    assert Actor("OP-1", Role.OPERATOR).may(Permission.COLLECT_CASH)
    for role in (Role.TECHNICIAN, Role.BACK_OFFICE):
        for permission in (Permission.COLLECT_CASH, Permission.PAY_VOUCHER):
            assert not Actor("x", role).may(permission)
    assert Actor("T-1", Role.TECHNICIAN).may(Permission.RECORD_DEPOSIT)
    assert Actor("cmd-1", Role.BACK_OFFICE).may(Permission.CLOSE_DAY)
    assert not Actor("cmd-1", Role.BACK_OFFICE).may(Permission.REPRINT)
    with pytest.raises(NotPermitted):
        Actor("cmd-1", Role.BACK_OFFICE).require(Permission.PAY_VOUCHER)
    with pytest.raises(ValueError):
        Actor("", Role.OPERATOR)


@pytest.mark.parametrize("seconds", [29, 3601])
def test_the_operator_session_timeout_is_checked_at_start(tmp_path: Path, seconds: int) -> None:
    table: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "station": {"institution_no": "1", "name": "x", "terminal_id": "T1"},
        "platform": {"url": "http://127.0.0.1:9"},
        "token": {"kind": "software", "key_file": "k", "cert_file": "c"},
        "operator": {"session_timeout_s": seconds},
    }
    with pytest.raises(ConfigError, match="operator.session_timeout_s"):
        parse_config(table)
    table["operator"] = {"session_timeout_s": 600}
    assert parse_config(table).operator.session_timeout_s == 600
    assert rig_config(tmp_path, "http://127.0.0.1:9").operator.session_timeout_s == 300


def test_every_operator_message_and_label_has_its_chinese() -> None:
    zh = translator("zh_CN")
    modules = (deposits, cash_box, roles, session, cash_count, desk, papers)
    ids = [message for module in modules for message in module.MESSAGE_IDS]
    ids += [str(p) for p in Permission] + [str(r) for r in Role]
    untranslated = [message for message in ids if zh(message) == message]
    assert untranslated == []


def test_the_touchscreen_demo_can_give_its_station_float_in_one_call(
    tmp_path: Path, platform_sim_factory: Any
) -> None:
    sim = platform_sim_factory(auto_confirm_deposits=True)  # as ui/app.py's demo station
    with started_rig(tmp_path / "terminal", sim, funded=False) as rig:
        ensure_demo_float(rig.terminal)
        assert rig.terminal.float_account.last_known().balance_fen == 2_000_00  # type: ignore[union-attr]
        ensure_demo_float(rig.terminal)  # not low any more: nothing more is bought
        assert len(rig.records_of("float_deposit")) == 2  # pending, confirmed
