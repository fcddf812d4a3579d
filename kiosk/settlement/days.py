"""Business-day arithmetic: a day closes at the configured cut-off, local time."""

from datetime import date, datetime, time, timedelta


def business_day(moment: datetime, cutoff: time) -> date:
    """The business day a moment belongs to: at or after the cut-off it is the next day's."""
    if moment.tzinfo is None:
        raise ValueError("business_day needs a timezone-aware moment")
    local_day = moment.date()
    return (
        local_day + timedelta(days=1)
        if moment.timetz().replace(tzinfo=None) >= cutoff
        else local_day
    )


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, both included (empty if last < first)."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
