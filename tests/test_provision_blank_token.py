"""kiosk-tool provision initialises the one blank token present, through OpenSC's pkcs11-tool.

Each command runs in a subprocess with its own fresh SoftHSM2 directory (SOFTHSM2_CONF), so
the test session's shared tokens are never touched. SoftHSM2 always offers exactly one blank
slot and cannot offer two, so the refusal of several blank tokens is specified on
kiosk.provisioning.plan.token_decision directly.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.token.softhsm import SOFTHSM_MODULE, write_softhsm_conf
from kiosk.provisioning.plan import ProvisioningError, token_decision

pytestmark = pytest.mark.softhsm

USER_PIN = "24681357"
SO_PIN = "so-97531864"


@dataclass(frozen=True)
class Bench:
    root: Path
    env: dict[str, str]

    def provision(self, *args: str, platform: str = "http://127.0.0.1:9") -> Any:
        return subprocess.run(
            [
                sys.executable, "-m", "firmware_tools.cli", "provision",
                "--config", str(self.root / "kiosk.toml"), "--data", str(self.root / "data"),
                "--institution-no", "31010009", "--terminal-id", "T-09",
                "--station-name", "南湖便民服务站", "--platform", platform, "--devices", "sim",
                "--label", "station-usbkey", "--pin-source", "env:TEST_USER_PIN", *args,
            ],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def pkcs11_tool(self, *args: str) -> Any:
        return subprocess.run(
            ["pkcs11-tool", "--module", SOFTHSM_MODULE, *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    """A SoftHSM2 directory with no token at all: only SoftHSM2's one blank slot."""
    if not Path(SOFTHSM_MODULE).is_file():
        pytest.skip(f"SoftHSM2 is not installed ({SOFTHSM_MODULE}): apt-get install softhsm2")
    conf = write_softhsm_conf(tmp_path / "softhsm")
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "TEST_USER_PIN": USER_PIN,
        "TEST_SO_PIN": SO_PIN,
    }
    return Bench(tmp_path, env)


def statuses(done: Any) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return {step["id"]: step["status"] for step in json.loads(done.stdout)["steps"]}


def last_error_line(done: Any) -> str:
    lines = done.stderr.strip().splitlines()
    assert lines, "the command printed nothing on stderr"
    return lines[-1]


def test_provision_initialises_the_blank_token_generates_the_key_on_it_and_is_safe_to_rerun(
    bench: Bench, platform_sim: Any
) -> None:
    issuer = ("--dev-ca", str(bench.root / "ca"), "--json")
    first = bench.provision(
        "--so-pin-source", "env:TEST_SO_PIN", *issuer, platform=platform_sim.url
    )
    assert statuses(first) == {
        "initialise": "done",
        "token": "already done",
        "key": "done",
        "certificate": "done",
        "config": "done",
        "register": "done",
    }
    slots = bench.pkcs11_tool("--list-slots").stdout
    assert "token label        : station-usbkey" in slots
    assert "PIN initialized" in slots
    # The SO PIN given is the token's SO PIN; another one is refused.
    # (Setting the user PIN again, to the same value, needs an SO login.)
    so_login = ("--token-label", "station-usbkey", "--login", "--login-type", "so")
    reset = ("--init-pin", "--pin", "env:TEST_USER_PIN")
    wrong = bench.pkcs11_tool(*so_login, "--so-pin", "not-the-so-pin", *reset)
    assert "CKR_PIN_INCORRECT" in wrong.stderr
    right = bench.pkcs11_tool(*so_login, "--so-pin", "env:TEST_SO_PIN", *reset)
    assert right.returncode == 0, right.stderr

    # The second run needs no SO PIN: the token is the station token already.
    again = bench.provision(*issuer, platform=platform_sim.url)
    assert statuses(again)["initialise"] == "already done"
    assert statuses(again)["key"] == "already done"


def test_the_so_pin_never_reaches_pkcs11_tools_command_line(bench: Bench) -> None:
    # A pkcs11-tool first on PATH that records its arguments, then runs the real one.
    tools = bench.root / "bin"
    tools.mkdir()
    argv_log = bench.root / "argv.txt"
    wrapper = tools / "pkcs11-tool"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" >> {argv_log}\nexec /usr/bin/pkcs11-tool "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o700)
    env = {**bench.env, "PATH": f"{tools}:{bench.env['PATH']}"}
    done = Bench(bench.root, env).provision("--so-pin-source", "env:TEST_SO_PIN")
    # No issuer: it stops after writing the CSR, with the token initialised and keyed.
    assert done.returncode == 1 and "station.csr.pem" in last_error_line(done)
    recorded = argv_log.read_text(encoding="utf-8")
    assert "--init-token" in recorded
    assert SO_PIN not in recorded and USER_PIN not in recorded


@pytest.mark.parametrize(
    ("so_pin_source", "expected"),
    [
        (None, "give the SO PIN to set on it with --so-pin-source"),
        ("env:TEST_NO_SUCH_VARIABLE", "TEST_NO_SUCH_VARIABLE is not set"),
        ("file:{root}/so.pin", "chmod 600"),
        ("file:{root}/missing.pin", "does not exist"),
        ("so-pin-in-clear", "write it as 'env:NAME', 'file:/path' or 'prompt'"),
    ],
)
def test_a_missing_or_unsafe_so_pin_source_is_refused_and_the_token_stays_blank(
    bench: Bench, so_pin_source: str | None, expected: str
) -> None:
    (bench.root / "so.pin").write_text(SO_PIN, encoding="ascii")
    (bench.root / "so.pin").chmod(0o644)  # readable by others: refused
    args = (
        () if so_pin_source is None else ("--so-pin-source", so_pin_source.format(root=bench.root))
    )
    done = bench.provision(*args)
    assert done.returncode == 1
    assert expected in last_error_line(done)
    assert SO_PIN not in done.stderr
    assert "token state:   uninitialized" in bench.pkcs11_tool("--list-slots").stdout


def test_an_so_pin_the_token_refuses_is_one_line_naming_the_reason(bench: Bench) -> None:
    bench.env["TEST_SO_PIN"] = "12"  # SoftHSM2 wants 4 to 255 characters
    done = bench.provision("--so-pin-source", "env:TEST_SO_PIN")
    assert done.returncode == 1
    line = last_error_line(done)
    # SoftHSM2 answers CKR_PIN_INCORRECT for a length out of range; other tokens LEN_RANGE.
    assert "refused the SO PIN (CKR_PIN_" in line and "length limits" in line
    assert line.endswith("with --so-pin-source")
    assert "token state:   uninitialized" in bench.pkcs11_tool("--list-slots").stdout


def test_a_token_initialised_without_its_user_pin_gets_the_user_pin_set(bench: Bench) -> None:
    # As an earlier run (or the vendor) may leave it: label and SO PIN, no user PIN.
    init = bench.pkcs11_tool(
        "--slot-index", "0", "--init-token", "--label", "station-usbkey",
        "--so-pin", "env:TEST_SO_PIN",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    done = bench.provision("--so-pin-source", "env:TEST_SO_PIN")
    assert done.returncode == 1 and "station.csr.pem" in last_error_line(done)
    assert "PIN initialized" in bench.pkcs11_tool("--list-slots").stdout
    login = bench.pkcs11_tool(
        "--token-label", "station-usbkey", "--login", "--pin", "env:TEST_USER_PIN", "-O"
    )
    assert login.returncode == 0, login.stderr


@dataclass(frozen=True)
class Slot:
    slot_id: int
    label: str = ""
    initialised: bool = False
    user_pin_set: bool = False
    description: str = "USB reader"


def station(slot_id: int, *, user_pin_set: bool = True) -> Slot:
    return Slot(slot_id, "kiosk", initialised=True, user_pin_set=user_pin_set)


def test_the_token_with_the_label_is_used_and_blank_tokens_beside_it_are_left_alone() -> None:
    decision = token_decision([Slot(1), station(2), Slot(3)], "kiosk", module="m.so")
    assert (decision.action, decision.slot.slot_id) == ("ready", 2)


def test_a_labelled_token_without_a_user_pin_gets_one_and_is_not_initialised_again() -> None:
    decision = token_decision([Slot(1), station(2, user_pin_set=False)], "kiosk", module="m.so")
    assert (decision.action, decision.slot.slot_id) == ("set_user_pin", 2)


def test_the_one_blank_token_is_initialised_when_no_token_has_the_label() -> None:
    other = Slot(1, "vendor", initialised=True, user_pin_set=True)
    decision = token_decision([other, Slot(7)], "kiosk", module="m.so")
    assert (decision.action, decision.slot.slot_id) == ("initialise", 7)


def test_several_blank_tokens_are_refused_naming_their_slots() -> None:
    with pytest.raises(ProvisioningError, match=r"2 blank tokens .*slots 4 .*, 5 .*unplug all but"):
        token_decision([Slot(4), Slot(5)], "kiosk", module="m.so")


def test_several_tokens_with_the_label_are_refused() -> None:
    with pytest.raises(ProvisioningError, match="2 tokens are labelled 'kiosk': unplug all but"):
        token_decision([station(1), station(2)], "kiosk", module="m.so")


def test_no_blank_token_and_no_label_names_the_labels_present_and_what_to_do() -> None:
    other = Slot(1, "ePass2003", initialised=True, user_pin_set=True)
    with pytest.raises(ProvisioningError, match="tokens present: 'ePass2003'.*--label"):
        token_decision([other], "kiosk", module="m.so")


def test_no_token_at_all_says_to_plug_one_in() -> None:
    with pytest.raises(ProvisioningError, match="no token in m.so: plug in the station's USBKey"):
        token_decision([], "kiosk", module="m.so")
