"""kiosk-tool update: build, sign, verify, install, confirm and roll back software updates.

`build` and `sign` run at the release team (sign needs the release private key); the rest run
on the terminal. `start` is the boot guard the kiosk service runs before every start (it counts
the starts of a version on trial and rolls it back when it used them up). See docs/updates.md.
"""

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kiosk.catalog
from kiosk.command_line import CommandError, emit
from kiosk.updates import (
    DEFAULT_MAX_STARTS,
    InstallTarget,
    SlotStore,
    StartDecision,
    UpdateStatus,
    build_bundle,
    release_key_fingerprint,
    sign_bundle,
    verify_bundle,
)

DEFAULT_ROOT = Path("/opt/kiosk")
RELEASE_KEY = "keys/release.pub.pem"
HARDWARE_FILE = "hardware"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{what} {path} does not exist: check the path") from None
    except OSError as exc:
        raise CommandError(f"cannot read {what} {path}: {exc.strerror}") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _release_key(args: argparse.Namespace) -> bytes:
    if args.key is not None:
        return _read(args.key, "release public key")
    return _read(args.root / RELEASE_KEY, "release public key")


def _hardware(args: argparse.Namespace) -> str:
    if args.hardware:
        return str(args.hardware)
    path = args.root / HARDWARE_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CommandError(
            f"{path} does not exist: give --hardware (e.g. rpi4-arm64) or run provision.sh"
        ) from None


def _build(args: argparse.Namespace) -> int:
    created = _now()
    catalog_dir: Path = args.catalog or Path(kiosk.catalog.__file__).parent / "data"
    metadata = build_bundle(
        args.out,
        version=args.version,
        hardware=args.hardware,
        created=created,
        expires=created + timedelta(days=args.expires_days),
        software_dir=args.wheels,
        ioboard_dir=args.ioboard,
        catalog_dir=catalog_dir,
    )
    emit(
        args,
        {"bundle": str(args.out), "version": metadata.version, "files": len(metadata.files)},
        f"built unsigned bundle {metadata.version} ({len(metadata.files)} files) into {args.out}; "
        "sign it with 'kiosk-tool update sign'",
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    metadata = sign_bundle(args.input, _read(args.key, "release private key"))
    emit(
        args,
        {"bundle": str(args.input), "version": metadata.version, "signed": True},
        f"signed bundle {metadata.version} ({args.input})",
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    key = _read(args.key, "release public key")
    target = None
    if args.hardware is not None:
        target = InstallTarget(args.hardware, args.installed, _now())
    metadata = verify_bundle(args.input, key, target)
    fingerprint = release_key_fingerprint(key)
    emit(
        args,
        {
            "valid": True,
            "version": metadata.version,
            "hardware": list(metadata.hardware),
            "expires": metadata.expires.isoformat(),
            "files": len(metadata.files),
            "release_key_sha256": fingerprint,
        },
        f"{args.input}: signature and {len(metadata.files)} file hashes good; version "
        f"{metadata.version} for {', '.join(metadata.hardware)}, expires "
        f"{metadata.expires:%Y-%m-%d} (release key sha256 {fingerprint[:16]}...)",
    )
    return 0


def _status_text(status: UpdateStatus) -> str:
    if status.active is None:
        return f"no software installed under {status.root}"
    lines = [f"running slot {status.active.name}: version {status.active.version}"]
    for slot in status.slots:
        lines.append(f"  slot {slot.name}: {slot.version or 'empty'}")
    if status.trial is not None:
        trial = status.trial
        lines.append(
            f"  on trial: {trial.version}, {trial.starts} of {trial.max_starts} starts used; "
            f"not confirmed healthy, falls back to slot {trial.fallback}"
        )
    for event in status.events[-3:]:
        lines.append(f"  {event['time']} {event['type']}")
    return "\n".join(lines)


def _install(args: argparse.Namespace) -> int:
    status = SlotStore(args.root).install(
        args.input,
        _release_key(args),
        hardware=_hardware(args),
        now=_now(),
        max_starts=args.max_starts,
    )
    assert status.active is not None
    version = status.active.version
    text = f"installed {version} into slot {status.active.name}; "
    if status.trial is not None:
        text += (
            "restart the terminal (systemctl restart kiosk); it must report healthy within "
            f"{status.trial.max_starts} starts or it rolls back to {status.trial.fallback}"
        )
    else:
        text += "first software on this terminal: restart it (systemctl restart kiosk)"
    emit(args, status.to_json(), text)
    return 0


def _decision_json(decision: StartDecision) -> dict[str, Any]:
    return {
        "action": decision.action,
        "version": decision.version,
        "starts": decision.starts,
        "max_starts": decision.max_starts,
        "rolled_back_from": decision.rolled_back_from,
    }


def _start(args: argparse.Namespace) -> int:
    decision = SlotStore(args.root).record_start(_now())
    texts = {
        "no_software": f"no software installed under {args.root}",
        "normal": f"starting {decision.version}",
        "trial": f"starting {decision.version} on trial, start {decision.starts} of "
        f"{decision.max_starts}: it must report healthy",
        "rolled_back": f"{decision.rolled_back_from} never reported healthy: rolled back to "
        f"{decision.version}",
    }
    emit(args, _decision_json(decision), texts[decision.action])
    return 0


def _confirm(args: argparse.Namespace) -> int:
    version = SlotStore(args.root).confirm(_now())
    text = f"{version} confirmed healthy" if version else "nothing on trial: nothing to confirm"
    emit(args, {"confirmed": version}, text)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    decision = SlotStore(args.root).rollback(_now())
    emit(
        args,
        _decision_json(decision),
        f"rolled back from {decision.rolled_back_from} to {decision.version}; restart the "
        "terminal (systemctl restart kiosk)",
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    status = SlotStore(args.root).status()
    emit(args, status.to_json(), _status_text(status))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from kiosk.updates.fetch import fetch_bundle  # python-tuf is needed only here

    path = fetch_bundle(
        metadata_dir=args.root / "tuf",
        metadata_url=args.url.rstrip("/") + "/metadata/",
        targets_url=args.url.rstrip("/") + "/targets/",
        target=args.target,
        download_dir=args.out,
    )
    emit(args, {"bundle": str(path)}, f"fetched {args.target} into {path}; install it next")
    return 0


def _root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help=f"update root (default {DEFAULT_ROOT})"
    )
    parser.add_argument("--json", action="store_true")


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("update", help="signed software updates with automatic rollback")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    build = sub.add_parser("build", help="make an unsigned bundle (release team)")
    build.add_argument("--version", required=True, help="the software version, e.g. 1.4.0")
    build.add_argument(
        "--hardware", action="append", required=True, help="target hardware (repeatable)"
    )
    build.add_argument("--wheels", type=Path, required=True, help="directory of .whl files")
    build.add_argument("--ioboard", type=Path, help="the I/O board build directory")
    build.add_argument("--catalog", type=Path, help="catalog directory (default: shipped one)")
    build.add_argument("--expires-days", type=int, default=90, help="validity (default 90)")
    build.add_argument("--out", type=Path, required=True, help="bundle file to write")
    build.add_argument("--json", action="store_true")
    build.set_defaults(handler=_build)

    sign = sub.add_parser("sign", help="sign a bundle with the release private key")
    sign.add_argument("--key", type=Path, required=True, help="release private key (PEM)")
    sign.add_argument("--in", dest="input", type=Path, required=True, metavar="BUNDLE")
    sign.add_argument("--json", action="store_true")
    sign.set_defaults(handler=_sign)

    verify = sub.add_parser("verify", help="check a bundle's signature and file hashes")
    verify.add_argument("--in", dest="input", type=Path, required=True, metavar="BUNDLE")
    verify.add_argument("--key", type=Path, required=True, help="release public key (PEM)")
    verify.add_argument("--hardware", help="also check it is for this hardware and not expired")
    verify.add_argument("--installed", help="with --hardware: also check it is newer than this")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    install = sub.add_parser("install", help="install a bundle into the inactive slot")
    install.add_argument("--in", dest="input", type=Path, required=True, metavar="BUNDLE")
    install.add_argument(
        "--key", type=Path, help=f"release public key (default ROOT/{RELEASE_KEY})"
    )
    install.add_argument(
        "--hardware", help=f"this terminal's hardware (default ROOT/{HARDWARE_FILE})"
    )
    install.add_argument(
        "--max-starts",
        type=int,
        default=DEFAULT_MAX_STARTS,
        help=f"starts allowed before it must be confirmed (default {DEFAULT_MAX_STARTS})",
    )
    _root(install)
    install.set_defaults(handler=_install)

    start = sub.add_parser("start", help="boot guard: count this start, roll back if due")
    _root(start)
    start.set_defaults(handler=_start)

    confirm = sub.add_parser("confirm", help="mark the version on trial healthy")
    _root(confirm)
    confirm.set_defaults(handler=_confirm)

    rollback = sub.add_parser("rollback", help="run the other slot's version from next start")
    _root(rollback)
    rollback.set_defaults(handler=_rollback)

    status = sub.add_parser("status", help="slots, versions, trial and recent update events")
    _root(status)
    status.set_defaults(handler=_status)

    fetch = sub.add_parser("fetch", help="download a bundle from the update server (TUF)")
    fetch.add_argument("--url", required=True, help="update server base URL")
    fetch.add_argument("--target", required=True, help="bundle name, e.g. kiosk-1.4.0.bundle")
    fetch.add_argument("--out", type=Path, required=True, help="directory to download into")
    _root(fetch)
    fetch.set_defaults(handler=_fetch)
