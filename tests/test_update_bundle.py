"""Update bundles: only a genuine, intact, current bundle for this hardware is accepted."""

import io
import json
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_tools.cli import main as kiosk_tool
from kiosk.updates import (
    InstallTarget,
    UpdateError,
    read_metadata,
    sign_bundle,
    verify_bundle,
)
from tests.fixtures.updates import HARDWARE, BundleMaker, ReleaseKeys

NOW = datetime.now(UTC)


def _tamper(bundle: Path, old: bytes, new: bytes) -> None:
    raw = bundle.read_bytes()
    assert raw.count(old) == 1 and len(old) == len(new)
    bundle.write_bytes(raw.replace(old, new))


def test_a_signed_bundle_verifies_and_extracts_exactly_its_listed_files(
    make_bundle: BundleMaker, release_keys: ReleaseKeys, tmp_path: Path
) -> None:
    bundle = make_bundle("1.1.0")
    out = tmp_path / "out"
    metadata = verify_bundle(
        bundle, release_keys.public_pem, InstallTarget(HARDWARE, "1.0.0", NOW), extract_to=out
    )
    assert metadata.version == "1.1.0"
    extracted = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert extracted == sorted(metadata.files)
    assert (out / "ioboard" / "main.mpy").read_bytes().endswith(b"1.1.0")
    assert (out / "fonts" / "NotoSansCJK-Regular-SC.otf").read_bytes() == b"OTTO1.1.0"
    assert "software/kiosk_canary-1.1.0-py3-none-any.whl" in metadata.files


def test_openssl_alone_verifies_the_release_signature(
    make_bundle: BundleMaker, release_keys: ReleaseKeys, tmp_path: Path
) -> None:
    data, sig = read_metadata(make_bundle("1.1.0"))
    assert sig is not None
    (tmp_path / "metadata.json").write_bytes(data)
    (tmp_path / "metadata.json.sig").write_bytes(sig)
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(release_keys.public),
         "-signature", "metadata.json.sig", "metadata.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "Verified OK" in result.stdout


def test_an_unsigned_bundle_is_refused(make_bundle: BundleMaker, release_keys: ReleaseKeys) -> None:
    with pytest.raises(UpdateError, match="bundle is not signed"):
        verify_bundle(make_bundle("1.1.0", sign=False), release_keys.public_pem)


def test_a_bundle_signed_with_another_key_is_refused(
    make_bundle: BundleMaker, release_keys: ReleaseKeys, other_keys: ReleaseKeys
) -> None:
    bundle = make_bundle("1.1.0", private_pem=other_keys.private_pem)
    with pytest.raises(UpdateError, match="signature does not match"):
        verify_bundle(bundle, release_keys.public_pem)


def test_tampered_metadata_is_refused(make_bundle: BundleMaker, release_keys: ReleaseKeys) -> None:
    bundle = make_bundle("1.1.0", hardware=(HARDWARE, "rpi5-arm64"))
    _tamper(bundle, b'"rpi5-arm64"', b'"rpi3-arm64"')
    with pytest.raises(UpdateError, match="signature does not match"):
        verify_bundle(bundle, release_keys.public_pem)


def test_a_tampered_payload_file_is_refused_and_named(
    make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    bundle = make_bundle("1.1.0")
    _tamper(bundle, b"M\x06\x00\x1f1.1.0", b"X\x06\x00\x1f1.1.0")
    with pytest.raises(UpdateError, match="ioboard/main.mpy does not match its signed hash"):
        verify_bundle(bundle, release_keys.public_pem)


def test_a_file_smuggled_into_a_signed_bundle_is_refused(
    make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    bundle = make_bundle("1.1.0")
    with tarfile.open(bundle, "a") as tar:
        info = tarfile.TarInfo("payload/software/evil-1.0-py3-none-any.whl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(UpdateError, match="metadata does not list"):
        verify_bundle(bundle, release_keys.public_pem)


def test_a_link_inside_a_bundle_is_refused(
    make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    bundle = make_bundle("1.1.0")
    with tarfile.open(bundle, "a") as tar:
        info = tarfile.TarInfo("payload/ioboard/passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UpdateError, match="not a plain file"):
        verify_bundle(bundle, release_keys.public_pem)


@pytest.mark.parametrize("installed", ["1.1.0", "1.2.0", "1.1"])
def test_a_version_not_newer_than_the_installed_one_is_refused(
    make_bundle: BundleMaker, release_keys: ReleaseKeys, installed: str
) -> None:
    with pytest.raises(UpdateError, match=f"1.1.0 is not newer than the installed {installed}"):
        verify_bundle(
            make_bundle("1.1.0"), release_keys.public_pem, InstallTarget(HARDWARE, installed, NOW)
        )


def test_expired_metadata_is_refused(make_bundle: BundleMaker, release_keys: ReleaseKeys) -> None:
    bundle = make_bundle(
        "1.1.0", created=NOW - timedelta(days=40), expires=NOW - timedelta(seconds=1)
    )
    with pytest.raises(UpdateError, match="expired on"):
        verify_bundle(bundle, release_keys.public_pem, InstallTarget(HARDWARE, "1.0.0", NOW))


def test_a_bundle_for_other_hardware_is_refused(
    make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    bundle = make_bundle("1.1.0", hardware=("rpi5-arm64",))
    with pytest.raises(UpdateError, match="is for rpi5-arm64, not for this rpi4-arm64 terminal"):
        verify_bundle(bundle, release_keys.public_pem, InstallTarget(HARDWARE, None, NOW))


def test_a_bundle_is_signed_only_once(make_bundle: BundleMaker, release_keys: ReleaseKeys) -> None:
    with pytest.raises(UpdateError, match="signed already"):
        sign_bundle(make_bundle("1.1.0"), release_keys.private_pem)


def test_a_file_that_is_not_a_bundle_gets_one_clear_reason(
    tmp_path: Path, release_keys: ReleaseKeys
) -> None:
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(b"\x00" * 10 + b"not a tar")
    with pytest.raises(UpdateError, match="not an update bundle"):
        verify_bundle(junk, release_keys.public_pem)


def test_the_cli_builds_signs_and_verifies_a_bundle(
    tmp_path: Path, release_keys: ReleaseKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fixtures.updates import make_wheel

    make_wheel(tmp_path / "wheels", "2.0.0")
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "NotoSansCJK-Bold-SC.otf").write_bytes(b"OTTO")
    bundle = tmp_path / "kiosk-2.0.0.bundle"
    wheels = str(tmp_path / "wheels")
    assert kiosk_tool(["update", "build", "--version", "2.0.0", "--hardware", HARDWARE,
                       "--wheels", wheels, "--fonts", str(tmp_path / "fonts"),
                       "--out", str(bundle)]) == 0  # fmt: skip
    assert (
        kiosk_tool(["update", "sign", "--key", str(release_keys.private), "--in", str(bundle)]) == 0
    )
    capsys.readouterr()
    assert kiosk_tool(["update", "verify", "--in", str(bundle), "--key", str(release_keys.public),
                       "--hardware", HARDWARE, "--installed", "1.0.0", "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["version"] == "2.0.0"
    # The shipped catalog and the prepared faces travel with the software.
    assert report["files"] >= 4


@pytest.mark.parametrize(
    ("version", "hardware", "sign", "reason"),
    [
        ("1.1.0", HARDWARE, False, "bundle is not signed"),
        ("0.9.0", HARDWARE, True, "not newer than the installed 1.0.0"),
        ("1.1.0", "rpi5-arm64", True, "not for this rpi4-arm64 terminal"),
    ],
)
def test_the_cli_refuses_with_one_line_and_exit_code_1(
    make_bundle: BundleMaker,
    release_keys: ReleaseKeys,
    capsys: pytest.CaptureFixture[str],
    version: str,
    hardware: str,
    sign: bool,
    reason: str,
) -> None:
    bundle = make_bundle(version, hardware=(hardware,), sign=sign)
    code = kiosk_tool(["update", "verify", "--in", str(bundle), "--key", str(release_keys.public),
                       "--hardware", HARDWARE, "--installed", "1.0.0"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and reason in err
