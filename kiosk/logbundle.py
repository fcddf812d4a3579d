"""The log bundle a technician sends to support: logs, configuration and diagnostics, redacted.

Owns what goes into `kiosk-tool logs collect` and the redaction of secrets on the way in:
PEM private key blocks, values of keys that name a PIN, password, secret or token, URL
credentials, bearer tokens, and every literal PIN the terminal knows of (its pin_source and
the PIN files beside a simulated token), wherever they appear. It never copies a key file,
a PIN file or a token directory, and never includes a file it cannot read as text.
"""

import io
import json
import os
import re
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.config import Config
from kiosk.errors import KioskError

REDACTED = "[REDACTED]"
MAX_FILE_BYTES = 20 * 1024 * 1024  # a log file larger than this is cut to its last part
MIN_LITERAL = 4  # shorter "secrets" would redact ordinary words and numbers

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
_SECRET_NAME = (
    r"[\w.-]*(?:pin|password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key"
    r"|credential)[\w.-]*"
)
# Keys that name where a secret comes from or which object it is, not the secret itself.
_NOT_SECRET_SUFFIXES = ("_source", "_file", "_path", "_label", "_conf", "_dir", "_locked")
_QUOTED_PAIR = re.compile(rf'(?i)(["\']({_SECRET_NAME})["\']\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}}\s]+)')
_PLAIN_PAIR = re.compile(
    rf'(?i)(?<![\w"\'])(({_SECRET_NAME})\s*[=:]\s*)("[^"\n]*"|\'[^\'\n]*\'|\S+)'
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")

# Files never copied into a bundle, whatever directory they are found in.
_NEVER = re.compile(r"(?i)(\.pin$|key.*\.pem$|\.key$|\.p12$|\.pfx$|softhsm2\.conf$)")


class LogBundleError(KioskError):
    """The bundle could not be written; the message says what to do."""


@dataclass
class Redactor:
    """Removes secrets from text; literals are the secret values the terminal knows of."""

    literals: list[str] = field(default_factory=list)
    count: int = 0

    def add_literal(self, value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_LITERAL and value not in self.literals:
            self.literals.append(value)
            # Longest first, so a secret containing another is removed whole.
            self.literals.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        text, n = _PRIVATE_KEY_BLOCK.subn(f"-----{REDACTED} PRIVATE KEY-----", text)
        self.count += n
        text = _QUOTED_PAIR.sub(self._pair, text)
        text = _PLAIN_PAIR.sub(self._pair, text)
        text, n = _URL_CREDENTIALS.subn(rf"\g<1>{REDACTED}@", text)
        self.count += n
        text, n = _BEARER.subn(rf"\g<1> {REDACTED}", text)
        self.count += n
        for literal in self.literals:
            n = text.count(literal)
            if n:
                text = text.replace(literal, REDACTED)
                self.count += n
        return text

    def _pair(self, match: re.Match[str]) -> str:
        name, value = match.group(2).lower(), match.group(3)
        if name.endswith(_NOT_SECRET_SUFFIXES) or REDACTED in value:
            return match.group(0)
        bare = value.strip("\"'")
        if bare.startswith(("env:", "file:", "/")) or bare in ("prompt", "null", "None", ""):
            return match.group(0)  # a pointer to the secret, not the secret
        self.count += 1
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{match.group(1)}{quote}{REDACTED}{quote}"


def known_secrets(config: Config) -> list[str]:
    """The PINs this terminal knows of: its pin_source and PIN files beside its token."""
    found: list[str] = []
    source = config.token.pin_source
    scheme, _, rest = source.partition(":")
    if scheme == "env" and rest and os.environ.get(rest):
        found.append(os.environ[rest])
    pin_files = [Path(rest)] if scheme == "file" and rest else []
    token_dir = config.data_path / "token"
    if token_dir.is_dir():
        pin_files.extend(token_dir.glob("*.pin"))
    for path in pin_files:
        try:
            found.append(path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue  # unreadable to us: then it cannot leak through us either
    return [value for value in found if value]


@dataclass(frozen=True)
class BundleSummary:
    out: Path
    files: tuple[str, ...]
    left_out: tuple[str, ...]
    redactions: int


def _text_of(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > MAX_FILE_BYTES:
            handle.seek(size - MAX_FILE_BYTES)
        data = handle.read()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _candidates(
    config: Config, config_path: Path, log_dirs: Iterable[Path]
) -> list[tuple[str, Path]]:
    members: list[tuple[str, Path]] = [(f"config/{config_path.name}", config_path)]
    for directory in log_dirs:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    members.append((f"logs/{directory.name}/{path.relative_to(directory)}", path))
    diagnostics = config.data_path / "diagnostics"
    if diagnostics.is_dir():
        for path in sorted(diagnostics.glob("*.json")):
            members.append((f"diagnostics/{path.name}", path))
    return members


def collect_bundle(
    config: Config,
    config_path: Path,
    out: Path,
    *,
    log_dirs: Iterable[Path] = (),
    extra_texts: dict[str, str] | None = None,
) -> BundleSummary:
    """Write a .tar.gz of the configuration, logs and diagnostics with secrets redacted.

    extra_texts are added as generated files (e.g. a fresh diagnose run, journalctl output).
    """
    redactor = Redactor()
    for secret in known_secrets(config):
        redactor.add_literal(secret)
    files: list[str] = []
    left_out: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    now = time.time()

    def add(tar: tarfile.TarFile, name: str, text: str) -> None:
        data = redactor.redact(text).encode("utf-8")
        info = tarfile.TarInfo(f"kiosk-logs/{name}")
        info.size, info.mtime, info.mode = len(data), int(now), 0o644
        tar.addfile(info, io.BytesIO(data))
        files.append(name)

    try:
        with tarfile.open(partial, "w:gz") as tar:
            for name, path in _candidates(config, config_path, log_dirs):
                if _NEVER.search(path.name):
                    left_out.append(f"{name} (secret material, never collected)")
                    continue
                try:
                    text = _text_of(path)
                except OSError as exc:
                    left_out.append(f"{name} (unreadable: {exc.strerror})")
                    continue
                if text is None:
                    left_out.append(f"{name} (binary)")
                    continue
                add(tar, name, text)
            for name, text in (extra_texts or {}).items():
                add(tar, name, text)
            manifest = {
                "format": "kiosk-logs/1",
                "station": config.station.institution_no,
                "terminal": config.station.terminal_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "files": files,
                "left_out": left_out,
                "redactions": redactor.count,
            }
            add(tar, "MANIFEST.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise LogBundleError(f"cannot write the log bundle {out}: {exc.strerror}") from None
    return BundleSummary(out, tuple(files), tuple(left_out), redactor.count)
