"""How the dashboard writes times, ages and amounts for people.

Owns the forms staff read: a moment in the operator's time zone as "2026-12-07 17:46", a
recency as "3 分钟前 / 3 min ago", money as yuan with two decimals. Pure functions; the
words come from the catalog through the translate function given.
"""

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.i18n import Translate


def moment(value: float | str | None, zone: ZoneInfo) -> datetime.datetime | None:
    """A Unix time or an ISO 8601 text (with an offset) as an aware time in the zone."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.astimezone(zone)
    return datetime.datetime.fromtimestamp(float(value), zone)


def local_time(value: float | str | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """ "2026-12-07 17:46" in the operator's zone; "" when there is no time."""
    when = moment(value, zone)
    if when is None:
        return "" if not isinstance(value, str) else value
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def ago(t: Translate, now: float, then: float | None) -> str:
    """How long ago, in the largest whole unit that reads naturally."""
    if then is None:
        return t("Never")
    seconds = max(0, int(now - then))
    if seconds < 120:
        return t("{n} s ago").format(n=seconds)
    if seconds < 7200:
        return t("{n} min ago").format(n=seconds // 60)
    if seconds < 3 * 86400:
        return t("{n} h ago").format(n=seconds // 3600)
    return t("{n} days ago").format(n=seconds // 86400)


def yuan(value: Any) -> str:
    """Fen as "¥1,234.50" (integer arithmetic, thousands grouped); "" for a missing value."""
    if not isinstance(value, int) or isinstance(value, bool):
        return ""
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(value), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
