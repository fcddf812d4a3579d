"""Business-day arithmetic: a day closes at the configured cut-off, local time.

A business day is named after the calendar date on which most of it lies
(docs/transactions.md, "Business day"):
- a cut-off at noon or later (e.g. 23:30) ends the day it names: 23:45 on 7 December belongs
  to 8 December's business day;
- a cut-off before noon (e.g. 00:00 or 02:00, the small hours) ends the day after the one it
  names: 01:00 on 8 December still belongs to 7 December's business day, 10:00 to 8 December.
So a midnight cut-off names every business day by its own calendar date, and no cut-off
labels a whole day one day late.
"""

from datetime import date, datetime, time, timedelta

NOON = time(12, 0)


def business_day(moment: datetime, cutoff: time) -> date:
    """The business day a moment belongs to."""
    if moment.tzinfo is None:
        raise ValueError("business_day needs a timezone-aware moment")
    local_day = moment.date()
    local_time = moment.timetz().replace(tzinfo=None)
    if cutoff >= NOON:
        return local_day + timedelta(days=1) if local_time >= cutoff else local_day
    return local_day - timedelta(days=1) if local_time < cutoff else local_day


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, both included (empty if last < first)."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
