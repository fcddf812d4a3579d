"""Where the token's user PIN comes from: config key token.pin_source.

Owns reading the PIN from "env:NAME", "file:/path" or "prompt". It must never log, print or
put the PIN into an error message; messages name the source, not what it held.
"""

import getpass
import os
import stat
from pathlib import Path

from kiosk.errors import ConfigError


def read_pin(source: str) -> str:
    """Read the user PIN from a token.pin_source value; raise ConfigError naming the problem."""
    scheme, _, rest = source.partition(":")
    if source == "prompt":
        pin = getpass.getpass("USBKey user PIN: ")
    elif scheme == "env" and rest:
        value = os.environ.get(rest)
        if value is None:
            raise ConfigError(
                f"config key 'token.pin_source' is 'env:{rest}' but the environment variable"
                f" {rest} is not set: set it for the terminal's service"
            )
        pin = value
    elif scheme == "file" and rest:
        pin = _read_pin_file(Path(rest))
    else:
        raise ConfigError(
            f"config key 'token.pin_source' is {source!r}; write it as 'env:NAME',"
            " 'file:/path' or 'prompt'"
        )
    if not pin:
        raise ConfigError(f"the user PIN from token.pin_source {source!r} is empty: set it")
    return pin


def _read_pin_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"the PIN file {path} named by token.pin_source does not exist: create it"
            " (mode 600, owned by the terminal's user)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the PIN file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the PIN file {path} can be read or changed by group or others: run"
            f" 'chmod 600 {path}' so that only the terminal's user can read it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the PIN file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the PIN file {path} is not UTF-8 text: write the PIN as text") from None
    # Editors and `echo` add a line end; it is not part of the PIN.
    return text.rstrip("\r\n")
