"""Telling systemd how the terminal service is doing: READY, WATCHDOG pings and STATUS.

Owns the sd_notify protocol of a Type=notify unit with WatchdogSec. It is written by hand
(one datagram per message on the AF_UNIX socket named by $NOTIFY_SOCKET, see sd_notify(3))
because it is a dozen lines and avoids a dependency on libsystemd bindings. Outside systemd
($NOTIFY_SOCKET unset) every call does nothing, so tests and the demo need no special case.
It never decides whether the terminal is healthy: the caller pings only when it is.
"""

import os
import socket
from datetime import timedelta


class ServiceNotifier:
    """Sends sd_notify messages to the service manager that started this process, if any."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading "@" names a socket in the abstract namespace (a leading NUL byte).
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    @property
    def watchdog_interval(self) -> timedelta | None:
        """How often to ping: half the unit's WatchdogSec, as sd_watchdog_enabled(3) advises."""
        return self._watchdog

    def notify(self, **fields: str) -> bool:
        """Send KEY=value lines (READY="1", STATUS="...") in one datagram; False if unsent."""
        if not self._address:
            return False
        lines = []
        for key, value in fields.items():
            if "\n" in value:
                raise ValueError(f"sd_notify field {key} must be one line")
            lines.append(f"{key}={value}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), self._address)
        except OSError:
            # systemd gone or socket full: the watchdog will notice if this persists.
            return False
        return True

    def ready(self, status: str = "serving residents") -> bool:
        return self.notify(READY="1", STATUS=status)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG="1")

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        return self.notify(STOPPING="1")


def _watchdog_interval(env: dict[str, str]) -> timedelta | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were forked or exec'd by the real target)
    return timedelta(microseconds=int(usec) / 2)
