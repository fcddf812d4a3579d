"""kiosk-tool update: build, sign, verify, install, confirm and roll back software updates.

`build`, `sign`, `repo-init`, `publish`, `repo-rotate` and `repo-refresh` run at the release
team (they need its private keys); the rest run on the terminal. `start` is the boot guard the
kiosk service runs, as root, before every start (it counts the starts of a version on trial,
rolls it back when it used them up, and puts the running slot's I/O board firmware on the
board); `serve` is the privileged updater (kiosk-updater.service). See docs/updates.md.
"""

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import kiosk.catalog
from firmware_tools.tool_language import say, say_text, tool_translator
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
DEFAULT_SPOOL = Path("/var/lib/kiosk/updates")
RELEASE_KEY = "keys/release.pub.pem"
TUF_ANCHOR = "keys/tuf-root.json"
UPDATE_URL_FILE = "update-url"
HARDWARE_FILE = "hardware"


class ProgressLine:
    """Progress on a technician's terminal: one rewritten line on a TTY, else a line per step.

    With --json the progress goes to stderr so that stdout stays one JSON document.
    """

    def __init__(self, args: argparse.Namespace, stream: TextIO | None = None) -> None:
        self.stream = stream or (sys.stderr if getattr(args, "json", False) else sys.stdout)
        self.tty = self.stream.isatty()
        self.t = tool_translator()
        self._last_decile = -1

    def step(self, text: str) -> None:
        """A step the core reports (a MessageText) or a line already said."""
        print(say_text(self.t, text), file=self.stream, flush=True)

    def bytes(self, target: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        text = say(
            self.t,
            "downloading {target}: {percent:3d}% ({done:.1f} of {total:.1f} MB)",
            target=target,
            percent=percent,
            done=done / 1e6,
            total=total / 1e6,
        )
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{text}", end=end, file=self.stream, flush=True)
        elif percent // 10 > self._last_decile:
            self._last_decile = percent // 10
            print(text, file=self.stream, flush=True)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(
            "{what} {path} does not exist: check the path", what=what, path=path
        ) from None
    except OSError as exc:
        raise CommandError(
            "cannot read {what} {path}: {problem}", what=what, path=path, problem=exc.strerror
        ) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _release_key(args: argparse.Namespace) -> bytes:
    if args.key is not None:
        return _read(args.key, "release public key")
    return _read(args.root / RELEASE_KEY, "release public key")


def _hardware(args: argparse.Namespace) -> str:
    if args.hardware:
        return str(args.hardware)
    path: Path = args.root / HARDWARE_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CommandError(
            "{path} does not exist: give --hardware (e.g. rpi4-arm64) or run provision.sh",
            path=path,
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
        fonts_dir=args.fonts,
    )
    emit(
        args,
        {"bundle": str(args.out), "version": metadata.version, "files": len(metadata.files)},
        say(
            tool_translator(),
            "built unsigned bundle {version} ({count} files) into {path}; "
            "sign it with 'kiosk-tool update sign'",
            version=metadata.version,
            count=len(metadata.files),
            path=args.out,
        ),
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    metadata = sign_bundle(args.input, _read(args.key, "release private key"))
    emit(
        args,
        {"bundle": str(args.input), "version": metadata.version, "signed": True},
        say(
            tool_translator(),
            "signed bundle {version} ({path})",
            version=metadata.version,
            path=args.input,
        ),
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
        say(
            tool_translator(),
            "{path}: signature and {count} file hashes good; version {version} for "
            "{hardware}, expires {expires} (release key sha256 {fingerprint}...)",
            path=args.input,
            count=len(metadata.files),
            version=metadata.version,
            hardware=", ".join(metadata.hardware),
            expires=f"{metadata.expires:%Y-%m-%d}",
            fingerprint=fingerprint[:16],
        ),
    )
    return 0


def _status_text(status: UpdateStatus) -> str:
    t = tool_translator()
    if status.active is None:
        return say(t, "no software installed under {root}", root=status.root)
    lines = [
        say(
            t,
            "running slot {slot}: version {version}",
            slot=status.active.name,
            version=status.active.version,
        )
    ]
    for slot in status.slots:
        if slot.version:
            lines.append(say(t, "  slot {slot}: {version}", slot=slot.name, version=slot.version))
        else:
            lines.append(say(t, "  slot {slot}: empty", slot=slot.name))
    if status.trial is not None:
        trial = status.trial
        lines.append(
            say(
                t,
                "  on trial: {version}, {starts} of {max_starts} starts used; "
                "not confirmed healthy, falls back to slot {fallback}",
                version=trial.version,
                starts=trial.starts,
                max_starts=trial.max_starts,
                fallback=trial.fallback,
            )
        )
    for event in status.events[-3:]:
        lines.append(f"  {event['time']} {event['type']}")  # the event's kind, as recorded
    return "\n".join(lines)


def _install(args: argparse.Namespace) -> int:
    progress = ProgressLine(args)
    status = SlotStore(args.root).install(
        args.input,
        _release_key(args),
        hardware=_hardware(args),
        now=_now(),
        max_starts=args.max_starts,
        progress=progress.step,
    )
    assert status.active is not None
    version = status.active.version
    t = tool_translator()
    if status.trial is not None:
        text = say(
            t,
            "installed {version} into slot {slot}; restart the terminal (systemctl restart "
            "kiosk); it must report healthy within {max_starts} starts or it rolls back to "
            "{fallback}",
            version=version,
            slot=status.active.name,
            max_starts=status.trial.max_starts,
            fallback=status.trial.fallback,
        )
    else:
        text = say(
            t,
            "installed {version} into slot {slot}; first software on this terminal: restart "
            "it (systemctl restart kiosk)",
            version=version,
            slot=status.active.name,
        )
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
    store = SlotStore(args.root)
    decision = store.record_start(_now())
    if args.ioboard_port and decision.action != "no_software":
        from firmware_tools.board_sync import sync_board_firmware

        line = sync_board_firmware(
            args.root / "current" / "ioboard", args.ioboard_port, ProgressLine(args).step
        )
        if line.event is not None:
            store.record_event(line.event, _now(), **line.fields)
        print(say_text(tool_translator(), line.text), file=sys.stderr, flush=True)
    texts = {
        "no_software": "no software installed under {root}",
        "normal": "starting {version}",
        "trial": "starting {version} on trial, start {starts} of {max_starts}: it must report "
        "healthy",
        "rolled_back": "{rolled_back_from} never reported healthy: rolled back to {version}",
    }
    text = say(
        tool_translator(),
        texts[decision.action],
        root=args.root,
        version=decision.version,
        starts=decision.starts,
        max_starts=decision.max_starts,
        rolled_back_from=decision.rolled_back_from,
    )
    emit(args, _decision_json(decision), text)
    return 0


def _confirm(args: argparse.Namespace) -> int:
    version = SlotStore(args.root).confirm(_now())
    t = tool_translator()
    if version:
        text = say(t, "{version} confirmed healthy", version=version)
    else:
        text = say(t, "nothing on trial: nothing to confirm")
    emit(args, {"confirmed": version}, text)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    decision = SlotStore(args.root).rollback(_now())
    emit(
        args,
        _decision_json(decision),
        say(
            tool_translator(),
            "rolled back from {rolled_back_from} to {version}; restart the terminal "
            "(systemctl restart kiosk)",
            rolled_back_from=decision.rolled_back_from,
            version=decision.version,
        ),
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    status = SlotStore(args.root).status()
    emit(args, status.to_json(), _status_text(status))
    return 0


def _update_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    path: Path = args.root / UPDATE_URL_FILE
    try:
        return path.read_text(encoding="utf-8").strip().rstrip("/")
    except FileNotFoundError:
        raise CommandError(
            "{path} does not exist: give --url or provision the terminal with --update-url",
            path=path,
        ) from None


def _fetcher(
    args: argparse.Namespace, progress: ProgressLine | None
) -> Callable[[str, Path, Callable[[int, int], None]], Path]:
    from kiosk.updates.fetch import fetch_bundle  # python-tuf is needed only here

    url = _update_url(args)

    def fetch(target: str, download_dir: Path, report: Callable[[int, int], None]) -> Path:
        def both(done: int, total: int) -> None:
            report(done, total)
            if progress is not None:
                progress.bytes(target, done, total)

        return fetch_bundle(
            trusted_root=args.root / TUF_ANCHOR,
            metadata_dir=args.spool / "tuf",
            metadata_url=url + "/metadata/",
            targets_url=url + "/targets/",
            target=target,
            download_dir=download_dir,
            progress=both,
        )

    return fetch


def _fetch(args: argparse.Namespace) -> int:
    path = _fetcher(args, ProgressLine(args))(args.target, args.out, lambda d, t: None)
    text = say(
        tool_translator(),
        "fetched {target} into {path}; install it next",
        target=args.target,
        path=path,
    )
    emit(args, {"bundle": str(path)}, text)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from kiosk.updates.spool import UpdateSpool
    from kiosk.updates.worker import Updater, UpdaterSetup

    setup = UpdaterSetup(
        store=SlotStore(args.root),
        spool=UpdateSpool(args.spool),
        release_public_pem=_release_key(args),
        hardware=_hardware(args),
        fetch=_fetcher(args, None),
    )
    lines = Updater(setup, _now).run()
    t = tool_translator()
    text = "\n".join(say_text(t, line) for line in lines) or say(t, "nothing to do")
    emit(args, {"done": lines}, text)
    return 0


# ---------------------------------------------------------------------- the update server


def _role_keys(args: argparse.Namespace) -> dict[Any, list[Any]]:
    from kiosk.updates.publish import Role, load_signer

    signers: dict[Any, list[Any]] = {}
    for item in args.key or []:
        role, sep, path = item.partition("=")
        if not sep or role not in set(Role):
            raise CommandError(
                "--key {value!r} is not ROLE=PEM with ROLE one of {roles}",
                value=item,
                roles=", ".join(Role),
            )
        signers.setdefault(Role(role), []).append(load_signer(_read(Path(path), "key"), path))
    return signers


def _repo_state(args: argparse.Namespace, repo: Any, text: str) -> int:
    state = repo.state()
    emit(args, state.to_json(), text)
    return 0


def _repo_init(args: argparse.Namespace) -> int:
    from kiosk.updates.publish import Role, UpdateRepository, load_public_key, load_signer

    keys: dict[Role, list[Any]] = {}
    signers: dict[Role, list[Any]] = {}
    for role in Role:
        for path in getattr(args, f"{role}_key") or []:
            pem = _read(path, f"{role} key")
            keys.setdefault(role, []).append(load_public_key(pem, str(path)))
            signers.setdefault(role, []).append(load_signer(pem, str(path)))
    thresholds = {role: getattr(args, f"{role}_threshold") for role in Role}
    repo = UpdateRepository.create(
        args.repo,
        keys=keys,
        thresholds=thresholds,
        root_signers=signers.get(Role.ROOT, []),
        signers=signers,
        now=_now(),
    )
    return _repo_state(
        args,
        repo,
        say(
            tool_translator(),
            "created the update repository in {repo}: serve it over HTTPS and give terminals "
            "{repo}/metadata/1.root.json (provision.sh --tuf-root)",
            repo=args.repo,
        ),
    )


def _publish(args: argparse.Namespace) -> int:
    from kiosk.updates.publish import UpdateRepository

    repo = UpdateRepository(args.repo)
    target = repo.publish(args.bundle, signers=_role_keys(args), now=_now(), name=args.name)
    return _repo_state(
        args,
        repo,
        say(
            tool_translator(),
            "published {target} ({length} bytes) in {repo}",
            target=target.path,
            length=target.length,
            repo=args.repo,
        ),
    )


def _repo_refresh(args: argparse.Namespace) -> int:
    from kiosk.updates.publish import Role, UpdateRepository

    repo = UpdateRepository(args.repo)
    roles = [Role(r) for r in args.role or []]
    repo.refresh(roles, signers=_role_keys(args), now=_now())
    roles_text = ", ".join(["snapshot", "timestamp", *roles])
    return _repo_state(args, repo, say(tool_translator(), "re-signed {roles}", roles=roles_text))


def _repo_rotate(args: argparse.Namespace) -> int:
    from kiosk.updates.publish import Role, UpdateRepository, load_public_key

    repo = UpdateRepository(args.repo)
    add = [load_public_key(_read(p, "new key"), str(p)) for p in args.add_key or []]
    remove = [load_public_key(_read(p, "old key"), str(p)) for p in args.remove_key or []]
    root = repo.rotate(
        Role(args.role),
        add=add,
        remove=remove,
        threshold=args.threshold,
        signers=_role_keys(args),
        now=_now(),
    )
    return _repo_state(
        args,
        repo,
        say(
            tool_translator(),
            "root version {version}: {role} keys rotated and re-signed",
            version=root.version,
            role=args.role,
        ),
    )


def _repo_status(args: argparse.Namespace) -> int:
    from kiosk.updates.publish import UpdateRepository

    repo = UpdateRepository(args.repo)
    state = repo.state()
    t = tool_translator()
    lines = [
        say(
            t,
            "{role}: version {version}, {keys} key(s), threshold {threshold}, expires "
            "{expires} UTC",
            role=role,
            version=state.versions[role],
            keys=state.key_counts[role],
            threshold=state.thresholds[role],
            expires=f"{state.expires[role]:%Y-%m-%d %H:%M}",
        )
        for role in state.versions
    ]
    lines += [
        say(t, "offers {target} ({length} bytes)", target=name, length=length)
        for name, length in state.targets.items()
    ]
    emit(args, state.to_json(), "\n".join(lines))
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
    build.add_argument(
        "--fonts", type=Path, help="the prepared font faces (python -m ui.fonts --out DIR)"
    )
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
    start.add_argument(
        "--ioboard-port",
        help="also put the running slot's I/O board firmware on the board at this port",
    )
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
    fetch.add_argument("--url", help=f"update server base URL (default: ROOT/{UPDATE_URL_FILE})")
    fetch.add_argument("--target", required=True, help="bundle name, e.g. kiosk-1.4.0.bundle")
    fetch.add_argument("--out", type=Path, required=True, help="directory to download into")
    _spool(fetch)
    _root(fetch)
    fetch.set_defaults(handler=_fetch)

    serve = sub.add_parser(
        "serve", help="privileged updater: carry out the terminal's requests and rollout order"
    )
    serve.add_argument("--url", help=f"update server base URL (default: ROOT/{UPDATE_URL_FILE})")
    serve.add_argument("--key", type=Path, help=f"release public key (default ROOT/{RELEASE_KEY})")
    serve.add_argument(
        "--hardware", help=f"this terminal's hardware (default ROOT/{HARDWARE_FILE})"
    )
    _spool(serve)
    _root(serve)
    serve.set_defaults(handler=_serve)

    _register_repository(sub)


def _spool(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spool",
        type=Path,
        default=DEFAULT_SPOOL,
        help=f"the terminal's update spool (default {DEFAULT_SPOOL})",
    )


# The TUF roles, spelled here so that building the parser does not import python-tuf;
# kiosk.updates.publish.Role is the vocabulary the commands check against.
ROLES = ("root", "targets", "snapshot", "timestamp")


def _register_repository(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    key_help = "a private key as ROLE=PEM (repeatable): the keys that sign this change"
    init = sub.add_parser("repo-init", help="create the update server's TUF repository")
    init.add_argument("--repo", type=Path, required=True, help="repository directory")
    for role in ROLES:
        init.add_argument(
            f"--{role}-key", type=Path, action="append", help=f"a {role} private key (repeatable)"
        )
        init.add_argument(
            f"--{role}-threshold", type=int, default=1, help=f"{role} signatures needed"
        )
    init.add_argument("--json", action="store_true")
    init.set_defaults(handler=_repo_init)

    publish = sub.add_parser("publish", help="offer a signed bundle on the update server")
    publish.add_argument("--repo", type=Path, required=True, help="repository directory")
    publish.add_argument("--bundle", type=Path, required=True, help="the signed bundle")
    publish.add_argument("--name", help="target name (default: the bundle's file name)")
    publish.add_argument("--key", action="append", help=key_help)
    publish.add_argument("--json", action="store_true")
    publish.set_defaults(handler=_publish)

    refresh = sub.add_parser("repo-refresh", help="re-sign before expiry (timestamp daily)")
    refresh.add_argument("--repo", type=Path, required=True, help="repository directory")
    refresh.add_argument(
        "--role",
        action="append",
        choices=["root", "targets"],
        help="also re-sign this role (snapshot and timestamp always are)",
    )
    refresh.add_argument("--key", action="append", help=key_help)
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(handler=_repo_refresh)

    rotate = sub.add_parser("repo-rotate", help="change a role's keys or threshold")
    rotate.add_argument("--repo", type=Path, required=True, help="repository directory")
    rotate.add_argument("--role", required=True, choices=ROLES)
    rotate.add_argument("--add-key", type=Path, action="append", help="a key to trust")
    rotate.add_argument("--remove-key", type=Path, action="append", help="a key to revoke")
    rotate.add_argument("--threshold", type=int, help="the role's new threshold")
    rotate.add_argument("--key", action="append", help=key_help)
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_repo_rotate)

    status = sub.add_parser("repo-status", help="versions, keys, expiry and bundles offered")
    status.add_argument("--repo", type=Path, required=True, help="repository directory")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_repo_status)
