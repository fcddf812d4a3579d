"""PKCS#11 URIs (RFC 7512) in the [token] table: the attributes the terminal uses, and no more.

Owns turning `pkcs11:token=Kiosk;object=station;type=private?module-path=/usr/lib/x.so&
pin-source=file:/etc/kiosk/pin` into the token label, key label, module path and PIN source
the driver takes, and refusing every URI that asks for something the terminal would not do.

Written by hand: no maintained Python library parses RFC 7512 (python-pkcs11 has none; the
parsers that exist are p11-kit's C, Go's and Rust's crates). It is the grammar of RFC 7512
section 2.3 for the attributes below, with percent-decoding by urllib.parse:

* path: `token` (the token label), `object` (the key's CKA_LABEL), `type` (only `private`:
  the URI names the station's private key); anything else that RFC 7512 defines (serial,
  id, slot-id, manufacturer, ...) is refused rather than silently ignored, because the
  terminal finds its token by label only;
* query: `module-path` (the vendor's PKCS#11 library), `pin-source` (`file:/path` as RFC 7512
  says, or this project's `env:NAME`); `pin-value` is refused: a PIN never sits in a file
  others may read; `module-name` is refused: give the path.

Each attribute may appear once. Pure: no I/O.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from kiosk.errors import ConfigError

SCHEME = "pkcs11:"
PATH_ATTRIBUTES = ("token", "object", "type")
QUERY_ATTRIBUTES = ("module-path", "pin-source")
# RFC 7512 section 2.3: pk11-pchar and pk11-qchar, plus percent escapes.
_CHARACTERS_PATH = re.compile(r"^(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,=&]|%[0-9A-Fa-f]{2})*\Z")
_CHARACTERS_QUERY = re.compile(r"^(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,=/?|;]|%[0-9A-Fa-f]{2})*\Z")
_NAME = re.compile(r"^[a-z][a-z0-9-]*\Z")


@dataclass(frozen=True)
class Pkcs11Uri:
    token: str | None = None
    object: str | None = None
    module_path: str | None = None
    pin_source: str | None = None


def _bad(uri_key: str, problem: str) -> ConfigError:
    return ConfigError(f"config key '{uri_key}' is not a usable PKCS#11 URI (RFC 7512): {problem}")


def _decode(uri_key: str, name: str, raw: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(uri_key, f"the value of '{name}' is not UTF-8 text") from None


def _attributes(
    uri_key: str, text: str, separator: str, allowed: re.Pattern[str], where: str
) -> dict[str, str]:
    found: dict[str, str] = {}
    if not text:
        return found
    for part in text.split(separator):
        name, equals, raw = part.partition("=")
        if not equals or not _NAME.match(name):
            raise _bad(uri_key, f"'{part}' in its {where} is not NAME=VALUE")
        if not allowed.match(raw):
            raise _bad(
                uri_key, f"the value of '{name}' has characters that must be percent-encoded"
            )
        if name in found:
            raise _bad(uri_key, f"'{name}' is given twice")
        found[name] = _decode(uri_key, name, raw)
    return found


def parse_pkcs11_uri(uri: str, uri_key: str = "token.uri") -> Pkcs11Uri:
    """The attributes of a PKCS#11 URI; ConfigError naming uri_key and the problem."""
    if not uri.startswith(SCHEME):
        raise _bad(uri_key, "it must start with 'pkcs11:'")
    body = uri[len(SCHEME) :]
    path, _question, query = body.partition("?")
    path_attributes = _attributes(uri_key, path, ";", _CHARACTERS_PATH, "path")
    query_attributes = _attributes(uri_key, query, "&", _CHARACTERS_QUERY, "query")
    for name in path_attributes:
        if name not in PATH_ATTRIBUTES:
            raise _bad(
                uri_key,
                f"the terminal finds its key by token and object label only; remove '{name}'"
                " (attributes used: token, object, type=private)",
            )
    for name in query_attributes:
        if name == "pin-value":
            raise _bad(uri_key, "pin-value puts the PIN in the file: use pin-source=file:/path")
        if name not in QUERY_ATTRIBUTES:
            raise _bad(
                uri_key,
                f"'{name}' is not used; the query takes module-path and pin-source only",
            )
    kind = path_attributes.get("type")
    if kind is not None and kind != "private":
        raise _bad(uri_key, f"type is '{kind}', but the URI must name the private key")
    pin_source = query_attributes.get("pin-source")
    if pin_source is not None and not pin_source.startswith(("file:", "env:")):
        raise _bad(uri_key, "pin-source must be file:/path (or env:NAME)")
    if pin_source is not None and pin_source.startswith("file://"):
        # RFC 8089 file URIs: file:///etc/pin and file://localhost/etc/pin are file:/etc/pin.
        rest = pin_source[len("file://") :]
        host, slash, tail = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise _bad(uri_key, "pin-source must be a local file (file:/path)")
        pin_source = "file:/" + tail
    module_path = query_attributes.get("module-path")
    if module_path is not None and not module_path.startswith("/"):
        raise _bad(uri_key, "module-path must be an absolute path to the PKCS#11 library")
    token = path_attributes.get("token")
    if token is not None and not 1 <= len(token.encode("utf-8")) <= 32:
        raise _bad(uri_key, "token must be 1 to 32 bytes long (a PKCS#11 token label)")
    if path_attributes.get("object") == "":
        raise _bad(uri_key, "object is empty: give the key's label")
    return Pkcs11Uri(
        token=token,
        object=path_attributes.get("object"),
        module_path=module_path,
        pin_source=pin_source,
    )
