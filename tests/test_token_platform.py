"""The platform simulator registers RSA-2048 and SM2 stations and checks their signatures.

Real HTTP to the simulator on loopback, signed by the software signer of each key type.
"""

from pathlib import Path

import pytest

from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.platform import PlatformRefused
from kiosk.platform.models import Operation
from kiosk.signing import KeyType
from tests.fixtures.platform import (
    STATION,
    TERMINAL,
    ThreadedPlatformSim,
    client_for,
    funded_client_for,
)
from tests.test_platform_sim import refusal, signed_post


def station(tmp_path: Path, key_type: KeyType, name: str = "station") -> SoftwareSigner:
    return create_software_identity(
        tmp_path / f"{name}-key.pem",
        tmp_path / f"{name}-cert.pem",
        institution_no=STATION,
        terminal_id=TERMINAL,
        station_name="Test station",
        key_type=key_type,
    )


@pytest.mark.parametrize("key_type", [KeyType.RSA2048, KeyType.SM2], ids=["rsa2048", "sm2"])
def test_an_rsa_or_sm2_station_registers_and_its_signed_requests_are_served(
    platform_sim: ThreadedPlatformSim, tmp_path: Path, key_type: KeyType
) -> None:
    signer = station(tmp_path, key_type)
    client = funded_client_for(platform_sim, signer)  # register, signed by the station key
    assert client.float_state().balance_fen > 0
    hold = {"key": "hold-1", "amount_fen": 1000}
    tampered = signed_post(platform_sim, signer, Operation.HOLD, hold, tamper=True)
    assert refusal(tampered) == (401, "bad_signature")
    # Another key of the same type cannot speak for the registered station.
    impostor = station(tmp_path, key_type, "impostor")
    assert refusal(signed_post(platform_sim, impostor, Operation.HOLD, hold)) == (
        401,
        "bad_signature",
    )
    assert platform_sim.dump()["holds"] == []


def test_a_certificate_with_an_unsupported_key_is_refused_at_registration(
    platform_sim: ThreadedPlatformSim, tmp_path: Path
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from drivers.token.software import station_subject

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(station_subject(STATION, TERMINAL, "Weak"))
        .issuer_name(station_subject(STATION, TERMINAL, "Weak"))
        .public_key(weak.public_key())
        .serial_number(7)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(weak, hashes.SHA256())
    )
    signer = station(tmp_path, KeyType.RSA2048)
    answer = signed_post(
        platform_sim,
        signer,
        Operation.REGISTER,
        {"certificate": certificate.public_bytes(serialization.Encoding.PEM).decode()},
    )
    assert refusal(answer) == (400, "bad_certificate")


def test_another_sm2_key_for_a_registered_terminal_is_a_conflict_not_a_crash(
    platform_sim: ThreadedPlatformSim, tmp_path: Path
) -> None:
    signer = station(tmp_path, KeyType.SM2)
    client_for(platform_sim, signer)
    other = station(tmp_path, KeyType.SM2, "other")
    with pytest.raises(PlatformRefused) as refused:
        client_for(platform_sim, other)
    assert refused.value.code == "certificate_conflict"
