"""Which icon a menu tile shows, read from ui/icons/icons.json (data, with its licence).

Owns the lookup: a catalog service by its kind and biller (its utility for a card top-up),
the app's own tiles (reprint, help, fee list) by their code. A service the table does not
name shows its name alone. It never draws anything and never branches on a service code.
"""

import json
from functools import cache
from pathlib import Path

from kiosk.catalog import Service

ICONS = Path(__file__).parent / "icons"


@cache
def _table() -> dict[str, dict[str, str]]:
    document = json.loads((ICONS / "icons.json").read_text(encoding="utf-8"))
    return {"services": dict(document["services"]), "tiles": dict(document["tiles"])}


def service_key(service: Service) -> str:
    """kind:biller, or kind:utility for a card top-up (a power card, a gas card)."""
    what = service.utility if service.kind == "card_topup" and service.utility else service.biller
    return f"{service.kind}:{what}"


def service_icon(service: Service) -> Path | None:
    name = _table()["services"].get(service_key(service))
    return None if name is None else ICONS / name


def tile_icon(code: str) -> Path | None:
    name = _table()["tiles"].get(code)
    return None if name is None else ICONS / name
