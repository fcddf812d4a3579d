"""Why the running terminal is out of service (or degraded): one vocabulary for all readers.

Owns the reasons the runtime (kiosk.runtime) finds at start and in housekeeping, which of
them stop payments, and their English message ids (translated for the screen in
kiosk/locale/*/LC_MESSAGES/runtime.po). Telemetry reports the codes (the enum values) in
the health report's devices.service entry; the screen shows the messages. It never finds a
fault itself and never decides how a screen looks.
"""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from enum import StrEnum

from kiosk.availability import ServiceAvailability


class Fault(StrEnum):
    # The USBKey cannot sign: absent, its PIN refused or locked. Nothing can be journaled
    # signed or sent to the platform (every request is signed with it).
    TOKEN_UNAVAILABLE = "token_unavailable"
    # The operator platform did not answer (registration, float, recovery's status queries).
    PLATFORM_UNREACHABLE = "platform_unreachable"
    # The platform answered and refused this station (registration or float refused).
    PLATFORM_REFUSED = "platform_refused"
    # Recovery of the transactions a restart left open could not run to its end.
    RECOVERY_INCOMPLETE = "recovery_incomplete"
    # The service catalog in force cannot be read.
    CATALOG_UNAVAILABLE = "catalog_unavailable"
    # The fleet's MQTT broker cannot be reached or telemetry could not start: residents are
    # served (records wait in the durable outbox), the back office is blind.
    TELEMETRY_DOWN = "telemetry_down"

    @property
    def blocks_payments(self) -> bool:
        return self is not Fault.TELEMETRY_DOWN

    @property
    def message(self) -> str:
        """The English message id the screen translates (runtime.po)."""
        return MESSAGES[self]


MESSAGES: dict[Fault, str] = {
    Fault.TOKEN_UNAVAILABLE: "The signature device (USBKey) is not working",
    Fault.PLATFORM_UNREACHABLE: "The operator's platform cannot be reached",
    Fault.PLATFORM_REFUSED: "The operator's platform refused this station",
    Fault.RECOVERY_INCOMPLETE: "Earlier payments are still being checked",
    Fault.CATALOG_UNAVAILABLE: "The list of services cannot be read",
    Fault.TELEMETRY_DOWN: "The back office cannot be reached",
}


def blocking(faults: Iterable[Fault]) -> tuple[Fault, ...]:
    """The faults that stop payments, in the enum's order."""
    found = set(faults)
    return tuple(fault for fault in Fault if fault in found and fault.blocks_payments)


def with_faults(
    services: Mapping[str, ServiceAvailability], faults: Iterable[Fault]
) -> dict[str, ServiceAvailability]:
    """The availability of each service once the faults that stop payments are added:
    every money service becomes unavailable with their messages among its reasons
    (reprint and help need no payment and stay as they are)."""
    stopping = blocking(faults)
    if not stopping:
        return dict(services)
    messages = tuple(fault.message for fault in stopping)
    result: dict[str, ServiceAvailability] = {}
    for code, availability in services.items():
        if code in ("reprint", "help"):
            result[code] = availability
            continue
        reasons = tuple(dict.fromkeys((*availability.reasons, *messages)))
        result[code] = replace(availability, available=False, reasons=reasons)
    return result
