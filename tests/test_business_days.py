"""Which business day a moment belongs to, for cut-offs in the evening and in the small hours
(docs/transactions.md, "Business day"): a day is named after the date most of it lies on."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from kiosk.settlement.days import business_day

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("cutoff", "moment", "expected"),
    [
        # The usual evening cut-off: after it, the next day's business.
        (time(23, 30), at(7, 10), date(2026, 12, 7)),
        (time(23, 30), at(7, 23, 29), date(2026, 12, 7)),
        (time(23, 30), at(7, 23, 30), date(2026, 12, 8)),
        (time(23, 30), at(8, 0, 10), date(2026, 12, 8)),
        # Midnight: every business day is its own calendar date (it was one day late).
        (time(0, 0), at(7, 0, 0), date(2026, 12, 7)),
        (time(0, 0), at(7, 10), date(2026, 12, 7)),
        (time(0, 0), at(7, 23, 59), date(2026, 12, 7)),
        # 02:00: the small hours still belong to the day before; the rest to today.
        (time(2, 0), at(8, 1, 59), date(2026, 12, 7)),
        (time(2, 0), at(8, 2, 0), date(2026, 12, 8)),
        (time(2, 0), at(7, 10), date(2026, 12, 7)),
        (time(2, 0), at(7, 23, 59), date(2026, 12, 7)),
    ],
)
def test_a_business_day_is_named_after_the_date_most_of_it_lies_on(
    cutoff: time, moment: datetime, expected: date
) -> None:
    assert business_day(moment, cutoff) == expected


@pytest.mark.parametrize("cutoff", [time(0, 0), time(2, 0), time(23, 30)])
def test_every_hour_of_a_week_falls_in_exactly_one_day_of_24_hours(cutoff: time) -> None:
    hours: dict[date, int] = {}
    for day in range(1, 8):
        for hour in range(24):
            label = business_day(at(day, hour, 15), cutoff)
            hours[label] = hours.get(label, 0) + 1
    # The week's inner days each hold exactly one day's hours, and labels never jump a day.
    inner = sorted(hours)[1:-1]
    assert inner and all(hours[d] == 24 for d in inner)
    labels = [business_day(at(d, h, 15), cutoff) for d in range(1, 8) for h in range(24)]
    assert all((b - a).days in (0, 1) for a, b in zip(labels, labels[1:], strict=False))


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_day(datetime(2026, 12, 7, 10), time(23, 30))
