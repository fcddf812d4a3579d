"""Publishing to the update server's TUF repository (kiosk.updates.publish and the CLI), read
back by a terminal's real TUF client over HTTP: thresholds, expiry, key rotation."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_tools.cli import main as kiosk_tool
from kiosk.updates import UpdateError
from kiosk.updates.publish import Role, UpdateRepository, load_public_key, load_signer
from tests.fixtures.updates import UpdateServer, _pem_pair, fetch_from

NAME = "kiosk-1.2.0.bundle"


def _key(path: Path) -> Path:
    path.write_bytes(_pem_pair()[0])
    return path


def test_a_published_bundle_reaches_a_terminal_and_the_state_lists_it(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"one")
    assert fetch_from(update_server, tmp_path / "t", NAME).read_bytes() == b"one"
    state = update_server.repo.state()
    assert state.targets == {NAME: 3}
    assert state.versions == {"root": 1, "targets": 2, "snapshot": 2, "timestamp": 2}
    assert state.expires["timestamp"] - datetime.now(UTC) < timedelta(days=1, minutes=1)


def test_publishing_without_enough_targets_signatures_writes_nothing(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    before = sorted(p.name for p in (update_server.dir / "metadata").iterdir())
    signers = update_server.signers()
    signers[Role.TARGETS] = [load_signer(_key(tmp_path / "x.pem").read_bytes(), "x")]
    bundle = tmp_path / NAME
    bundle.write_bytes(b"b")
    with pytest.raises(UpdateError, match="targets metadata needs 1 signature"):
        update_server.repo.publish(bundle, signers=signers, now=datetime.now(UTC))  # type: ignore[arg-type]
    assert sorted(p.name for p in (update_server.dir / "metadata").iterdir()) == before


def test_a_rotated_targets_key_is_followed_by_a_terminal_and_the_old_one_refused(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"one")
    terminal = tmp_path / "t"
    fetch_from(update_server, terminal, NAME)
    old = update_server.key_files[Role.TARGETS]
    new = update_server.new_key("targets-2")
    update_server.key_files[Role.TARGETS] = new
    signers = update_server.signers()
    update_server.repo.rotate(
        Role.TARGETS,
        add=[load_public_key(new.read_bytes(), "new")],
        remove=[load_public_key(old.read_bytes(), "old")],
        threshold=None,
        signers=signers,  # type: ignore[arg-type]
        now=datetime.now(UTC),
    )
    update_server.publish("kiosk-1.3.0.bundle", b"two")
    # The terminal still trusts only root v1 as its anchor: it walks to root v2 by itself.
    assert fetch_from(update_server, terminal, "kiosk-1.3.0.bundle").read_bytes() == b"two"
    assert update_server.repo.state().versions["root"] == 2

    update_server.key_files[Role.TARGETS] = old
    with pytest.raises(UpdateError, match="targets metadata needs 1 signature"):
        update_server.publish("kiosk-1.4.0.bundle", b"three")


def test_a_root_rotation_needs_the_old_root_keys(update_server: UpdateServer) -> None:
    new_root = update_server.new_key("root-2")
    signers = update_server.signers()
    signers[Role.ROOT] = [load_signer(new_root.read_bytes(), "root-2")]
    with pytest.raises(UpdateError, match="signatures by the current root keys"):
        update_server.repo.rotate(
            Role.ROOT,
            add=[load_public_key(new_root.read_bytes(), "r2")],
            remove=[load_public_key(update_server.key_files[Role.ROOT].read_bytes(), "r1")],
            threshold=None,
            signers=signers,  # type: ignore[arg-type]
            now=datetime.now(UTC),
        )
    assert update_server.repo.state().versions["root"] == 1


def test_a_threshold_of_two_targets_keys_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {name: _key(tmp_path / f"{name}.pem") for name in ("root", "t1", "t2", "snap", "ts")}
    repo = tmp_path / "repo"
    code = kiosk_tool(
        [
            "update", "repo-init", "--repo", str(repo),
            "--root-key", str(keys["root"]), "--targets-key", str(keys["t1"]),
            "--targets-key", str(keys["t2"]), "--targets-threshold", "2",
            "--snapshot-key", str(keys["snap"]), "--timestamp-key", str(keys["ts"]),
            "--json",
        ]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["thresholds"]["targets"] == 2
    bundle = tmp_path / NAME
    bundle.write_bytes(b"bundle")
    one_key = [
        "update", "publish", "--repo", str(repo), "--bundle", str(bundle),
        "--key", f"targets={keys['t1']}", "--key", f"snapshot={keys['snap']}",
        "--key", f"timestamp={keys['ts']}",
    ]  # fmt: skip
    assert kiosk_tool(one_key) != 0
    err = capsys.readouterr().err
    assert "needs 2 signature(s)" in err and "Traceback" not in err
    assert kiosk_tool([*one_key, "--key", f"targets={keys['t2']}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"] == {NAME: 6}
    refresh = [
        "update", "repo-refresh", "--repo", str(repo),
        "--key", f"snapshot={keys['snap']}", "--key", f"timestamp={keys['ts']}", "--json",
    ]  # fmt: skip
    assert kiosk_tool(refresh) == 0
    assert json.loads(capsys.readouterr().out)["versions"]["timestamp"] == 3


def test_a_second_init_in_the_same_directory_is_refused(update_server: UpdateServer) -> None:
    key = load_public_key(update_server.key_files[Role.ROOT].read_bytes(), "root")
    with pytest.raises(UpdateError, match="holds a repository already"):
        UpdateRepository.create(
            update_server.dir,
            keys={role: [key] for role in Role},
            thresholds={},
            root_signers=[update_server.signer(Role.ROOT)],  # type: ignore[list-item]
            signers={},
            now=datetime.now(UTC),
        )
