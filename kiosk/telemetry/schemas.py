"""Loads the JSON Schemas of the MQTT contract (kiosk/telemetry/schema/) and validates payloads.

The schema files are the contract's single source (the back office validates against the
same files, with the same validator, jsonschema-rs); this module only finds, caches and
applies them. The terminal's own payloads are built by kiosk.telemetry.payloads; tests
prove they validate.
"""

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from kiosk.errors import KioskError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SCHEMA_NAMES = (
    "status",
    "heartbeat",
    "health",
    "event",
    "outbox",
    "ack",
    "cmd",
    "cmd_result",
)


class PayloadInvalid(KioskError):
    """An MQTT payload does not follow its JSON Schema; the message says where."""


@cache
def load_schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_NAMES:
        raise ValueError(f"no MQTT schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    path = SCHEMA_DIR / f"{name}.schema.json"
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KioskError(
            f"MQTT schema {path} is missing: reinstall the software (the schemas ship with it)"
        ) from None
    return schema


@cache
def validator(name: str) -> jsonschema_rs.Draft202012Validator:
    """The compiled validator of a schema (compiling checks the schema itself)."""
    return jsonschema_rs.Draft202012Validator(load_schema(name))


def validate_payload(name: str, payload: Mapping[str, Any] | bytes) -> dict[str, Any]:
    """The payload as a dict if it follows schema name; PayloadInvalid with the first error."""
    if isinstance(payload, bytes):
        try:
            payload = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadInvalid(f"{name} payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise PayloadInvalid(f"{name} payload must be a JSON object")
    try:
        errors = sorted(
            validator(name).iter_errors(payload), key=lambda e: [str(p) for p in e.instance_path]
        )
    except ValueError as exc:  # a value JSON cannot carry (a lone surrogate...)
        raise PayloadInvalid(f"{name} payload cannot be checked: {exc}") from None
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.instance_path) or "(top level)"
        raise PayloadInvalid(f"{name} payload is invalid at {where}: {first.message}")
    return dict(payload)
