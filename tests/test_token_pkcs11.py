"""The USBKey token driver, against a real SoftHSM2 token through the same PKCS#11 code."""

import logging
import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ecdsa_signature

from drivers.token.certificate import days_left, institution_no_of, pem_of
from drivers.token.factory import signer_from_config
from drivers.token.pin import read_pin
from drivers.token.pkcs11_signer import (
    Pkcs11Signer,
    der_of_p1363,
    pkcs11_module,
    signer_error_for,
)
from drivers.token.softhsm import init_softhsm_token
from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.config import TokenConfig
from kiosk.errors import ConfigError
from kiosk.signing import SignerUnavailable, TokenLocked, WrongPin
from tests.fixtures.softhsm import SoftHsmToken

softhsm = pytest.mark.softhsm


def verify(certificate_pem: bytes, signature: bytes, data: bytes) -> None:
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def signer(softhsm_token: SoftHsmToken) -> Pkcs11Signer:
    return softhsm_token.signer()


# -- signing and the certificate -------------------------------------------------------------


@softhsm
def test_a_signature_verifies_with_the_public_key_of_the_certificate_on_the_token(
    signer: Pkcs11Signer,
) -> None:
    data = "缴费 12345 分".encode()
    signature = signer.sign(data)
    verify(signer.certificate_pem(), signature, data)
    with pytest.raises(InvalidSignature):
        verify(signer.certificate_pem(), signature, data + b"!")


@softhsm
def test_openssl_verifies_a_token_signature_with_the_station_certificate(
    signer: Pkcs11Signer, tmp_path: Path
) -> None:
    data = tmp_path / "record.json"
    data.write_bytes(b'{"amount_fen":12345}')
    (tmp_path / "record.sig").write_bytes(signer.sign(data.read_bytes()))
    (tmp_path / "station.pem").write_bytes(signer.certificate_pem())
    public = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "station.pem", "-noout", "-pubkey"],
        check=True,
        capture_output=True,
    ).stdout
    (tmp_path / "public.pem").write_bytes(public)
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "public.pem")]
        + ["-signature", str(tmp_path / "record.sig"), str(data)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stderr


@softhsm
def test_the_certificate_is_signed_by_the_token_key_and_names_the_station(
    signer: Pkcs11Signer, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    pem = signer.certificate_pem()
    certificate = x509.load_pem_x509_certificate(pem)
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "33078200001-T0001"
    assert (
        subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "青山社区便民服务站"
    )
    assert institution_no_of(pem) == softhsm_token.institution_no
    assert certificate.issuer == subject
    verify(pem, certificate.signature, certificate.tbs_certificate_bytes)
    key_id = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert key_id == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    assert 729 <= days_left(pem, datetime.now(UTC)) <= 730
    (tmp_path / "station.pem").write_bytes(pem)
    subprocess.run(  # OpenSSL agrees that the self-signature is sound
        ["openssl", "verify", "-CAfile", tmp_path / "station.pem", tmp_path / "station.pem"],
        check=True,
        capture_output=True,
    )


@softhsm
def test_the_private_key_is_sensitive_and_cannot_be_read_off_the_token(
    softhsm_token: SoftHsmToken, signer: Pkcs11Signer
) -> None:
    module = pkcs11_module(softhsm_token.module)
    with module.lock:
        token = module.find_token(softhsm_token.label)
        with module.open_user_session(token, softhsm_token.user_pin) as session:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="station")
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            certificate = x509.load_pem_x509_certificate(signer.certificate_pem())
            ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            assert key[Attribute.ID] == ski.value.digest
            with pytest.raises(p11.AttributeSensitive):
                key[Attribute.VALUE]


@softhsm
def test_signing_from_many_threads_at_once_gives_valid_signatures(signer: Pkcs11Signer) -> None:
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def sign(number: int) -> None:
        try:
            results[number] = signer.sign(f"record {number}".encode())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for number, signature in results.items():
        verify(signer.certificate_pem(), signature, f"record {number}".encode())
    assert len(results) == 24


@softhsm
def test_two_signers_of_one_token_in_one_process_both_sign(
    softhsm_token: SoftHsmToken, signer: Pkcs11Signer
) -> None:
    # PKCS#11 login belongs to the application, so the second login is "already logged in".
    second = softhsm_token.signer()
    verify(second.certificate_pem(), second.sign(b"two"), b"two")
    verify(signer.certificate_pem(), signer.sign(b"one"), b"one")


# -- health --------------------------------------------------------------------------------


@softhsm
def test_health_reports_the_token_its_certificate_and_no_error(
    signer: Pkcs11Signer, softhsm_token: SoftHsmToken
) -> None:
    health = signer.health()
    assert health["kind"] == "pkcs11"
    assert health["present"] is True and health["logged_in"] is True
    assert health["token_label"] == softhsm_token.label
    assert isinstance(health["token_serial"], str) and len(health["token_serial"]) == 16
    assert health["token_serial"] in softhsm_token.directory.name.replace("-", "")
    assert "CN=33078200001-T0001" in str(health["cert_subject"])
    assert isinstance(health["cert_days_left"], int) and 729 <= health["cert_days_left"] <= 730
    not_after = datetime.fromisoformat(str(health["cert_not_after"]))
    assert timedelta(days=729) < not_after - datetime.now(UTC) <= timedelta(days=730)
    assert health["pin_locked"] is False
    assert health["last_error"] is None


# -- PINs ----------------------------------------------------------------------------------


@softhsm
def test_a_wrong_pin_raises_wrong_pin_and_the_pin_appears_nowhere(
    softhsm_token: SoftHsmToken, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "918273-not-the-pin"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WrongPin) as refused:
        Pkcs11Signer(softhsm_token.module, softhsm_token.label, "station", secret)
    message = str(refused.value)
    assert "refused the user PIN" in message and "token.pin_source" in message
    assert secret not in message
    assert secret not in caplog.text
    assert "refused the user PIN" in caplog.text


@softhsm
def test_the_pin_never_appears_in_the_repr_or_the_health(
    signer: Pkcs11Signer, softhsm_token: SoftHsmToken
) -> None:
    assert softhsm_token.user_pin not in repr(signer)
    assert softhsm_token.user_pin not in str(signer)
    assert softhsm_token.user_pin not in repr(signer.health())


@softhsm
def test_a_refused_pin_is_never_tried_again_so_a_real_token_is_not_locked_by_retries(
    fresh_softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    token = fresh_softhsm_token
    signer = token.signer()
    signer.sign(b"before")
    # A technician changes the PIN while the terminal runs; the terminal's session stays.
    module = pkcs11_module(token.module)
    with module.lock, module.find_token(token.label).open(rw=True) as session:
        session.set_pin(token.user_pin, "555555")
    # The token is pulled and plugged in again: the terminal must log in anew.
    backup = tmp_path / "token-copy"
    shutil.copytree(token.directory, backup)
    shutil.rmtree(token.directory)
    with pytest.raises(SignerUnavailable):
        signer.sign(b"while out")
    shutil.copytree(backup, token.directory)
    with pytest.raises(WrongPin):
        signer.sign(b"old pin refused")
    # Even once the old PIN would work again, the signer does not try it by itself.
    with module.lock, module.find_token(token.label).open(rw=True, user_pin="555555") as session:
        session.set_pin("555555", token.user_pin)
    with pytest.raises(WrongPin):
        signer.sign(b"still refused")
    assert "refused the user PIN" in str(signer.health()["last_error"])
    verify(token.signer().certificate_pem(), token.signer().sign(b"new signer"), b"new signer")


@softhsm
def test_a_locked_pin_is_reported_as_token_locked_telling_a_technician_what_to_do() -> None:
    # SoftHSM2 2.6 has no user PIN retry counter (it answered CKR_PIN_INCORRECT to 12 wrong
    # logins in a row and then accepted the right PIN), so the token cannot be locked in a
    # test; the mapping of CKR_PIN_LOCKED that a real USBKey returns is checked directly.
    error = signer_error_for(p11.PinLocked(), "kiosk")
    assert isinstance(error, TokenLocked)
    assert "locked" in str(error) and "technician" in str(error) and "SO PIN" in str(error)
    assert isinstance(signer_error_for(p11.PinIncorrect(), "kiosk"), WrongPin)
    assert isinstance(signer_error_for(p11.DeviceRemoved(), "kiosk"), SignerUnavailable)
    assert isinstance(signer_error_for(p11.TokenNotPresent(), "kiosk"), SignerUnavailable)


# -- removal and reinsertion -----------------------------------------------------------------


@softhsm
def test_the_same_signer_signs_again_after_the_token_is_removed_and_reinserted(
    fresh_softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    token = fresh_softhsm_token
    signer = token.signer()
    verify(signer.certificate_pem(), signer.sign(b"first"), b"first")
    backup = tmp_path / "token-copy"
    shutil.copytree(token.directory, backup)
    shutil.rmtree(token.directory)  # SoftHSM2's equivalent of pulling the USBKey

    with pytest.raises(SignerUnavailable, match=f"'{token.label}' is not present: plug it in"):
        signer.sign(b"while out")
    health = signer.health()
    assert health["present"] is False and health["logged_in"] is False
    assert "not present" in str(health["last_error"])

    shutil.copytree(backup, token.directory)  # plugged in again
    verify(signer.certificate_pem(), signer.sign(b"back"), b"back")
    assert signer.health()["last_error"] is None


@softhsm
def test_a_lost_session_is_reopened_within_the_same_sign_call(
    fresh_softhsm_token: SoftHsmToken,
) -> None:
    signer = fresh_softhsm_token.signer()
    signer.sign(b"first")
    # C_Finalize + C_Initialize behind the signer's back closes every session it had.
    pkcs11_module(fresh_softhsm_token.module).lib().reinitialize()
    verify(signer.certificate_pem(), signer.sign(b"second"), b"second")


@softhsm
def test_a_signer_made_while_the_token_is_absent_signs_once_it_is_plugged_in(
    softhsm_token: SoftHsmToken,
) -> None:
    label = "kiosk-late"
    signer = Pkcs11Signer(softhsm_token.module, label, "station", softhsm_token.user_pin)
    health = signer.health()
    assert health["present"] is False
    assert f"'{label}' is not present" in str(health["last_error"])
    with pytest.raises(SignerUnavailable):
        signer.certificate_pem()
    init_softhsm_token(
        softhsm_token.conf.parent,
        label=label,
        so_pin=softhsm_token.so_pin,
        user_pin=softhsm_token.user_pin,
        institution_no=softhsm_token.institution_no,
        terminal_id="T0002",
        station_name=softhsm_token.station_name,
    )
    verify(signer.certificate_pem(), signer.sign(b"late"), b"late")


@softhsm
def test_a_token_without_the_station_key_is_reported_clearly(
    softhsm_token: SoftHsmToken,
) -> None:
    signer = Pkcs11Signer(softhsm_token.module, softhsm_token.label, "nope", softhsm_token.user_pin)
    with pytest.raises(SignerUnavailable, match="no private key labelled 'nope'"):
        signer.sign(b"x")


def test_a_module_that_cannot_be_loaded_is_reported_with_the_config_key(tmp_path: Path) -> None:
    signer = Pkcs11Signer(str(tmp_path / "missing.so"), "kiosk", "station", "123456")
    with pytest.raises(SignerUnavailable, match="check token.module"):
        signer.sign(b"x")
    assert signer.health()["present"] is False


# -- making SoftHSM2 tokens ------------------------------------------------------------------


@softhsm
def test_initialising_twice_reuses_the_token_key_and_certificate(
    fresh_softhsm_token: SoftHsmToken, caplog: pytest.LogCaptureFixture
) -> None:
    token = fresh_softhsm_token
    before = token.signer().certificate_pem()
    tokens = sorted(token.directory.parent.iterdir())
    caplog.set_level(logging.INFO)
    conf = init_softhsm_token(
        token.conf.parent,
        label=token.label,
        so_pin=token.so_pin,
        user_pin=token.user_pin,
        institution_no=token.institution_no,
        terminal_id=token.terminal_id,
        station_name=token.station_name,
    )
    assert conf == token.conf
    assert sorted(token.directory.parent.iterdir()) == tokens
    assert token.signer().certificate_pem() == before
    assert f"reusing the existing SoftHSM2 token '{token.label}'" in caplog.text
    assert token.user_pin not in caplog.text and token.so_pin not in caplog.text
    assert token.user_pin not in conf.read_text() and token.so_pin not in conf.read_text()


@softhsm
def test_initialising_a_token_of_another_institution_is_refused(
    fresh_softhsm_token: SoftHsmToken,
) -> None:
    token = fresh_softhsm_token
    with pytest.raises(ConfigError, match="already holds the certificate of 机构号 33078200001"):
        init_softhsm_token(
            token.conf.parent,
            label=token.label,
            so_pin=token.so_pin,
            user_pin=token.user_pin,
            institution_no="11000000009",
            terminal_id=token.terminal_id,
            station_name=token.station_name,
        )


def test_a_too_short_pin_is_refused_before_touching_softhsm(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="user PIN must be 4 to 255 characters"):
        init_softhsm_token(
            tmp_path,
            label="kiosk",
            so_pin="so-pin-1",
            user_pin="12",
            institution_no="1",
            terminal_id="T",
            station_name="S",
        )
    assert not (tmp_path / "tokens").exists()


# -- certificate facts -----------------------------------------------------------------------


def test_days_left_counts_whole_days_until_expiry_and_goes_negative_after(
    tmp_path: Path,
) -> None:
    signer = create_software_identity(
        tmp_path / "k.pem", tmp_path / "c.pem", institution_no="42", terminal_id="T9",
        station_name="S", days=30,
    )  # fmt: skip
    pem = signer.certificate_pem()
    issued = x509.load_pem_x509_certificate(pem).not_valid_after_utc - timedelta(days=30)
    assert days_left(pem, issued + timedelta(hours=1)) == 29
    assert days_left(pem, issued + timedelta(days=31)) == -1
    assert institution_no_of(pem) == "42"
    with pytest.raises(ValueError, match="timezone-aware"):
        days_left(pem, datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="not a PEM X.509 certificate"):
        institution_no_of(b"junk")


# -- PIN sources -----------------------------------------------------------------------------


def test_a_pin_is_read_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIOSK_TEST_PIN", "13579")
    assert read_pin("env:KIOSK_TEST_PIN") == "13579"
    monkeypatch.delenv("KIOSK_TEST_PIN")
    with pytest.raises(ConfigError, match="environment variable KIOSK_TEST_PIN is not set"):
        read_pin("env:KIOSK_TEST_PIN")


def test_a_pin_file_loses_its_trailing_newline(tmp_path: Path) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("24680\n")
    pin_file.chmod(0o600)
    assert read_pin(f"file:{pin_file}") == "24680"


def test_a_pin_file_readable_by_others_is_refused_without_showing_the_pin(
    tmp_path: Path,
) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("97531\n")
    pin_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"group or others: run 'chmod 600") as refused:
        read_pin(f"file:{pin_file}")
    assert "97531" not in str(refused.value)
    with pytest.raises(ConfigError, match="does not exist"):
        read_pin(f"file:{tmp_path / 'missing.pin'}")


def test_a_pin_can_be_typed_at_a_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt: "112233")
    assert read_pin("prompt") == "112233"


@pytest.mark.parametrize("source", ["pin:1234", "env:", "file:", "prompt:x", "1234"])
def test_an_unknown_pin_source_names_the_config_key(source: str) -> None:
    with pytest.raises(ConfigError, match="'token.pin_source'"):
        read_pin(source)


# -- the factory ---------------------------------------------------------------------------


def test_the_factory_builds_the_software_signer_for_the_demo(tmp_path: Path) -> None:
    create_software_identity(
        tmp_path / "k.pem", tmp_path / "c.pem", institution_no="42", terminal_id="T9",
        station_name="S",
    )  # fmt: skip
    config = TokenConfig(
        kind="software", key_file=str(tmp_path / "k.pem"), cert_file=str(tmp_path / "c.pem")
    )
    signer = signer_from_config(config)
    assert isinstance(signer, SoftwareSigner)
    verify(signer.certificate_pem(), signer.sign(b"demo"), b"demo")


@softhsm
def test_the_factory_builds_a_pkcs11_signer_with_the_pin_from_its_source(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIOSK_TOKEN_PIN", softhsm_token.user_pin)
    signer = signer_from_config(softhsm_token.token_config())
    assert signer.kind == "pkcs11"
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm_token.conf)
    verify(signer.certificate_pem(), signer.sign(b"factory"), b"factory")


def test_the_factory_names_a_missing_softhsm_conf_and_module(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'token.softhsm_conf' names"):
        signer_from_config(
            TokenConfig(kind="pkcs11", softhsm_conf=str(tmp_path / "none.conf")), pin="1234"
        )
    with pytest.raises(ConfigError, match="'token.module' names"):
        signer_from_config(TokenConfig(kind="pkcs11", module=str(tmp_path / "x.so")), pin="1234")


def test_pem_helpers_agree_with_cryptography(tmp_path: Path) -> None:
    signer = create_software_identity(
        tmp_path / "k.pem", tmp_path / "c.pem", institution_no="7", terminal_id="T1",
        station_name="S",
    )  # fmt: skip
    der = x509.load_pem_x509_certificate(signer.certificate_pem()).public_bytes(
        serialization.Encoding.DER
    )
    assert pem_of(der) == signer.certificate_pem()


@given(st.binary(min_size=64, max_size=64))
def test_a_p1363_signature_becomes_the_same_der_as_the_pkcs11_librarys_encoder(raw: bytes) -> None:
    # Leading zero bytes and a high first bit (an extra 0x00 in DER) are the cases that differ.
    assert der_of_p1363(raw) == encode_ecdsa_signature(raw)


def test_p1363_signatures_with_short_or_high_halves_encode_like_the_reference() -> None:
    for raw in (bytes(31) + b"\x01" + b"\x80" + bytes(31), b"\xff" * 64, bytes(64)[:-1] + b"\x01"):
        assert der_of_p1363(raw) == encode_ecdsa_signature(raw)
