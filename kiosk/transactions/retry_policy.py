"""When the terminal asks the platform again about work it still owes an answer to."""

from datetime import datetime, timedelta

FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(minutes=10)
# Alert the operator once the work failed this many times in a row (the first failure of a
# money request the customer waited for is alerted at once by the caller).
ALERT_AFTER_ATTEMPTS = 3


def next_try(now: datetime, attempts: int) -> datetime:
    """Exponential backoff from 10 s, doubled per failed attempt, at most 10 minutes."""
    wait: timedelta = FIRST_RETRY * (2 ** min(max(attempts - 1, 0), 10))
    return now + min(wait, LONGEST_WAIT)
