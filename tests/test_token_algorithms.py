"""Station keys of every type: P-256, RSA-2048 and SM2, signed and checked, OpenSSL agreeing.

SM2 is checked against OpenSSL 3 both ways (OpenSSL's keys and signatures in our code, ours
in OpenSSL). The PKCS#11 SM2 path cannot run on SoftHSM2 2.6 (it has no SM2 mechanism), so
its tests use a stand-in key object: a Python object with python-pkcs11's key.sign() shape
that signs with the software SM2 key, standing in for a vendor token (said where used).
"""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.token.keys import (
    Sm2Mechanism,
    der_of_p1363,
    mechanism_problem,
    sign_by_type,
    sign_sm2,
)
from drivers.token.software import SoftwareSigner, create_software_identity, load_key_pem
from kiosk import sm2
from kiosk.signing import KeyType, SignatureAlgorithm, SignerUnavailable
from kiosk.station_keys import station_key_of

VENDOR_SM2_SM3 = 0x80000301  # an example vendor number; real tokens document their own


def openssl(*args: object, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, input=data)


def identity(tmp_path: Path, key_type: KeyType) -> SoftwareSigner:
    return create_software_identity(
        tmp_path / f"{key_type.value}.key",
        tmp_path / f"{key_type.value}.pem",
        institution_no="33078200001",
        terminal_id="T0001",
        station_name="青山社区便民服务站",
        key_type=key_type,
    )


@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda kind: kind.value)
def test_each_software_key_signs_and_openssl_verifies_by_the_documented_command(
    tmp_path: Path, key_type: KeyType
) -> None:
    signer = identity(tmp_path, key_type)
    assert (
        signer.algorithm
        is {
            KeyType.P256: SignatureAlgorithm.ES256,
            KeyType.RSA2048: SignatureAlgorithm.RS256,
            KeyType.SM2: SignatureAlgorithm.SM2_SM3,
        }[key_type]
    )
    data = '{"收据":1}'.encode()
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "sig.der").write_bytes(signer.sign(data))
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        openssl("x509", "-in", tmp_path / f"{key_type.value}.pem", "-pubkey", "-noout").stdout
    )
    options = (
        ["-sm3", "-sigopt", "distid:1234567812345678"] if key_type is KeyType.SM2 else ["-sha256"]
    )
    done = openssl(
        "dgst", *options, "-verify", pub, "-signature", tmp_path / "sig.der", tmp_path / "data.bin"
    )
    assert done.stdout.strip() == b"Verified OK", done.stderr
    # The self-signed certificate's own signature verifies too (OpenSSL checks it for a
    # self-signed certificate only with -check_ss_sig).
    certificate = x509.load_pem_x509_certificate(signer.certificate_pem())
    key = station_key_of(certificate)
    assert key.key_type is key_type
    assert key.verify(certificate.signature, certificate.tbs_certificate_bytes)
    assert not key.verify(signer.sign(data), data + b" ")


def test_the_software_signer_reloads_its_key_file_of_each_type(tmp_path: Path) -> None:
    for key_type in KeyType:
        signer = identity(tmp_path, key_type)
        again = SoftwareSigner.from_files(
            tmp_path / f"{key_type.value}.key", tmp_path / f"{key_type.value}.pem"
        )
        assert again.key_type is key_type
        assert station_key_of(x509.load_pem_x509_certificate(signer.certificate_pem())).verify(
            again.sign(b"x"), b"x"
        )
        assert (tmp_path / f"{key_type.value}.key").stat().st_mode & 0o077 == 0


def test_an_openssl_sm2_key_and_signature_work_in_our_code_and_ours_in_openssl(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "sm2.key"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", key_file).returncode == 0
    key = load_key_pem(key_file.read_bytes())
    assert isinstance(key, sm2.Sm2PrivateKey)
    public = openssl("pkey", "-in", key_file, "-pubout", "-outform", "DER").stdout
    assert sm2.public_key_from_spki(public) == key.public_key()
    assert key.public_key().spki_der() == public
    data = tmp_path / "data.bin"
    data.write_bytes(b"payment 12345 fen")
    signed = openssl(
        "dgst", "-sm3", "-sign", key_file, "-sigopt", "distid:1234567812345678", data
    ).stdout
    assert key.public_key().verify(signed, data.read_bytes())
    assert not key.public_key().verify(signed, b"payment 12346 fen")
    ours = tmp_path / "ours.der"
    ours.write_bytes(key.sign(data.read_bytes()))
    (tmp_path / "pub.der").write_bytes(public)
    done = openssl(
        "dgst", "-sm3", "-verify", tmp_path / "pub.der", "-keyform", "DER", "-signature", ours,
        "-sigopt", "distid:1234567812345678", data,
    )  # fmt: skip
    assert done.stdout.strip() == b"Verified OK", done.stderr
    # Our PKCS#8 PEM is what OpenSSL reads as the same key.
    pem = tmp_path / "ours.pem"
    pem.write_bytes(key.pkcs8_pem())
    assert openssl("pkey", "-in", pem, "-pubout", "-outform", "DER").stdout == public


def test_sm2_refuses_points_off_the_curve_and_out_of_range_signatures() -> None:
    key = sm2.Sm2PrivateKey.generate()
    point = bytearray(key.public_key().point)
    point[-1] ^= 1
    with pytest.raises(sm2.Sm2Error, match="not a point of the SM2 curve"):
        sm2.Sm2PublicKey.from_point(bytes(point))
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    r, s = decode_dss_signature(key.sign(b"m"))
    public = key.public_key()
    assert public.verify(encode_dss_signature(r, s), b"m")
    assert not public.verify(encode_dss_signature(r + sm2.N, s), b"m")  # r must be below n
    assert not public.verify(encode_dss_signature(r, 0), b"m")
    assert not public.verify(b"\x30\x00", b"m")


def test_an_sm2_key_whose_x_starts_with_04_still_verifies() -> None:
    # gmssl strips a leading "04" from a public key with lstrip("04"), which also eats the
    # x coordinate's own leading 0 and 4 digits; kiosk.sm2 hands it the point directly.
    for _attempt in range(20000):
        key = sm2.Sm2PrivateKey.generate()
        if f"{key.public_key().x:064x}".startswith("04"):
            break
    else:  # pragma: no cover - about 1 key in 256 qualifies
        pytest.fail("no key with x starting 04 in 20000 tries")
    assert key.public_key().verify(key.sign(b"m"), b"m")


# ------------------------------------------------------------------ PKCS#11 SM2 (stand-in)


class StandInSm2Key:
    """Stands in for an SM2 private key object on a vendor token (SoftHSM2 has no SM2):
    python-pkcs11's key.sign(data, mechanism=...) shape, r || s out, as PKCS#11 returns."""

    def __init__(self, key: sm2.Sm2PrivateKey, *, hashes_itself: bool) -> None:
        self.key = key
        self.hashes_itself = hashes_itself
        self.calls: list[tuple[bytes, Any]] = []

    def sign(self, data: bytes, mechanism: Any) -> bytes:
        self.calls.append((data, mechanism))
        if self.hashes_itself:
            der = self.key.sign(data)
        else:
            # A raw SM2 mechanism signs the 32-byte digest e it is given.
            assert len(data) == 32
            der = _sign_digest(self.key, data)
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sign_digest(key: sm2.Sm2PrivateKey, digest: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    public = key.public_key()
    crypt = sm2._crypt(f"{public.x:064x}{public.y:064x}", f"{key.scalar:064x}")
    signed = crypt.sign(digest, f"{12345678:064x}")
    return encode_dss_signature(int(signed[:64], 16), int(signed[64:], 16))


@pytest.mark.parametrize("hash_on_host", [False, True], ids=["token-hashes", "host-hashes"])
def test_the_vendor_sm2_mechanism_signs_what_openssl_verifies(
    tmp_path: Path, hash_on_host: bool
) -> None:
    key = sm2.Sm2PrivateKey.generate()
    token_key = StandInSm2Key(key, hashes_itself=not hash_on_host)
    how = Sm2Mechanism(VENDOR_SM2_SM3, hash_on_host)
    data = b'{"seq":4,"alg":"SM2-SM3"}'
    der = sign_by_type(
        token_key,
        KeyType.SM2,
        {VENDOR_SM2_SM3},
        data,
        sm2_mechanism=how,
        sm2_public=key.public_key(),
    )
    ((sent, mechanism),) = token_key.calls
    assert mechanism == VENDOR_SM2_SM3
    assert sent == (key.public_key().digest(data) if hash_on_host else data)
    assert key.public_key().verify(der, data)
    (tmp_path / "pub.der").write_bytes(key.public_key().spki_der())
    (tmp_path / "sig.der").write_bytes(der)
    (tmp_path / "data.bin").write_bytes(data)
    done = openssl(
        "dgst", "-sm3", "-verify", tmp_path / "pub.der", "-keyform", "DER",
        "-signature", tmp_path / "sig.der", "-sigopt", "distid:1234567812345678",
        tmp_path / "data.bin",
    )  # fmt: skip
    assert done.stdout.strip() == b"Verified OK", done.stderr


def test_a_vendor_mechanism_that_returns_the_wrong_length_is_a_clear_error() -> None:
    class Broken:
        def sign(self, data: bytes, mechanism: Any) -> bytes:
            return bytes(72)  # e.g. DER where r || s was expected

    key = sm2.Sm2PrivateKey.generate()
    with pytest.raises(SignerUnavailable, match="returned 72 bytes, not the 64 of r"):
        sign_sm2(Broken(), Sm2Mechanism(VENDOR_SM2_SM3), key.public_key(), b"m")


def test_an_sm2_token_without_the_configured_mechanism_is_named() -> None:
    assert mechanism_problem(KeyType.SM2, {1, 2}, None) is not None
    problem = mechanism_problem(KeyType.SM2, {0x1041}, Sm2Mechanism(VENDOR_SM2_SM3))
    assert problem == (
        "does not list mechanism 0x80000301 (token.sm2_mechanism): give the vendor's SM2 with"
        " SM3 mechanism number"
    )
    assert mechanism_problem(KeyType.SM2, {VENDOR_SM2_SM3}, Sm2Mechanism(VENDOR_SM2_SM3)) is None


def test_p1363_to_der_keeps_r_and_s_of_an_sm2_signature() -> None:
    r, s = decode_dss_signature(sm2.Sm2PrivateKey.generate().sign(b"m"))
    assert decode_dss_signature(der_of_p1363(r.to_bytes(32, "big") + s.to_bytes(32, "big"))) == (
        r,
        s,
    )
