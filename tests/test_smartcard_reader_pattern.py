"""Choosing the PC/SC reader by `[devices] reader_name`: the pure rule (pcscd tests it live in
tests/test_smartcard_pcsc.py)."""

from pathlib import Path

import pytest

from drivers.smartcard.reader_pattern import choose_reader
from kiosk.config import load_config
from kiosk.devices import CardError
from kiosk.errors import ConfigError

ACS = "ACS ACR39U ICC Reader 00 00"
IDENTIV = "Identiv uTrust 2700 R [CCID Interface] (55041513) 00 00"
PINPAD = "Cherry SmartTerminal ST-2xxx [Vendor Interface] 01 00"
PRESENT = [ACS, IDENTIV, PINPAD]


@pytest.mark.parametrize(
    ("pattern", "chosen"),
    [
        ("ACS*", ACS),  # a glob on the whole name
        ("* 00 00", None),  # matches two: an error (below)
        ("*uTrust*", IDENTIV),
        ("Cherry*[Vv]endor*", PINPAD),
        ("ACS ACR39U", ACS),  # a plain prefix, as the key always meant
        (IDENTIV, IDENTIV),  # a full name with brackets, taken as written
        ("", ACS),  # empty: the first reader pcscd lists
    ],
)
def test_the_pattern_chooses_one_reader(pattern: str, chosen: str | None) -> None:
    if chosen is None:
        with pytest.raises(CardError, match="2 card readers match"):
            choose_reader(pattern, PRESENT)
    else:
        assert choose_reader(pattern, PRESENT) == chosen


def test_a_pattern_matching_no_reader_names_the_readers_present_in_one_line() -> None:
    with pytest.raises(CardError) as failure:
        choose_reader("Gemalto*", PRESENT)

    message = str(failure.value)
    assert "\n" not in message
    assert "no card reader matches 'Gemalto*'" in message
    assert all(repr(reader) in message for reader in PRESENT)
    assert "reader_name" in message


def test_a_pattern_matching_several_readers_names_them_and_is_an_error() -> None:
    with pytest.raises(CardError) as failure:
        choose_reader("*[CI]*", PRESENT)  # every name here has a C or an I

    assert str(failure.value).startswith("3 card readers match '*[CI]*'")


def test_the_glob_is_case_sensitive_as_pcsc_reader_names_are() -> None:
    with pytest.raises(CardError, match="no card reader matches"):
        choose_reader("acs*", PRESENT)


def test_without_readers_the_error_says_none_is_present() -> None:
    for pattern in ("", "ACS*"):
        with pytest.raises(CardError, match=r"readers present: none"):
            choose_reader(pattern, [])


MINIMAL_CONFIG = """
data_dir = "/tmp/kiosk"
[station]
institution_no = "33078200001"
name = "test"
terminal_id = "T0001"
[platform]
url = "http://127.0.0.1:8700"
[token]
kind = "pkcs11"
[devices]
card_reader = "real"
"""


def test_the_configuration_takes_a_pattern_and_refuses_one_that_is_not_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(MINIMAL_CONFIG + 'reader_name = "ACS ACR39U*"\n', encoding="utf-8")
    assert load_config(path).devices.reader_name == "ACS ACR39U*"

    path.write_text(MINIMAL_CONFIG + 'reader_name = "ACS\\nACR39U"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'devices.reader_name' must be one line"):
        load_config(path)
