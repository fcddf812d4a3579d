"""The back office's log lines, with their journald priority when systemd runs it.

Owns the logging set-up of kiosk-backoffice's long-running commands. Under systemd
(JOURNAL_STREAM set: stderr goes to the journal) every line starts with its syslog
priority as `<N>` (sd-daemon(3)), which journald strips and records, so `journalctl -p
warning -u kiosk-backoffice` finds the warnings and errors; the journal adds the time.
Elsewhere lines carry their time and level name.
"""

import logging
import os
import sys

# syslog priorities (sd-daemon.h: SD_CRIT "<2>" ... SD_DEBUG "<7>").
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)


def priority(level: int) -> int:
    for threshold, value in _PRIORITIES:
        if level >= threshold:
            return value
    return 7


class JournalFormatter(logging.Formatter):
    """`<N>logger: message`, every line of it prefixed (a traceback's too, since journald
    makes each line an entry of its own)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
