"""Where the token's PINs come from: config key token.pin_source, provision's --so-pin-source.

Owns reading the PIN from "env:NAME", "file:/path" or "prompt". It must never log, print or
put the PIN into an error message; messages name the source, not what it held.
"""

import getpass
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import ConfigError


@dataclass(frozen=True)
class PinKind:
    """Which PIN is read and from which setting, for the messages (never the PIN itself)."""

    what: str  # "user PIN"
    setting: str  # where the source is written: "token.pin_source"
    named: str  # how messages name it: "config key 'token.pin_source'"
    env_fix: str  # what to do when the variable is not set
    owner: str  # who may read a PIN file
    prompt: str


USER_PIN = PinKind(
    "user PIN",
    "token.pin_source",
    "config key 'token.pin_source'",
    "set it for the terminal's service",
    "the terminal's user",
    "USBKey user PIN: ",
)


def read_pin(source: str, kind: PinKind = USER_PIN) -> str:
    """Read a PIN from its source setting; raise ConfigError naming the problem."""
    scheme, _, rest = source.partition(":")
    if source == "prompt":
        pin = getpass.getpass(kind.prompt)
    elif scheme == "env" and rest:
        value = os.environ.get(rest)
        if value is None:
            raise ConfigError(
                f"{kind.named} is 'env:{rest}' but the environment variable"
                f" {rest} is not set: {kind.env_fix}"
            )
        pin = value
    elif scheme == "file" and rest:
        pin = _read_pin_file(Path(rest), kind)
    else:
        raise ConfigError(
            f"{kind.named} is {source!r}; write it as 'env:NAME', 'file:/path' or 'prompt'"
        )
    if not pin:
        raise ConfigError(f"the {kind.what} from {kind.setting} {source!r} is empty: set it")
    return pin


def _read_pin_file(path: Path, kind: PinKind) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"the {kind.what} file {path} named by {kind.setting} does not exist: create it"
            f" (mode 600, owned by {kind.owner})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind.what} file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the {kind.what} file {path} can be read or changed by group or others: run"
            f" 'chmod 600 {path}' so that only {kind.owner} can read it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind.what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"the {kind.what} file {path} is not UTF-8 text: write the PIN as text"
        ) from None
    # Editors and `echo` add a line end; it is not part of the PIN.
    return text.rstrip("\r\n")
