"""The update events of the A/B slots, as the terminal keeps and reports them: one vocabulary.

Owns the names of the events the slots' state keeps (docs/updates.md, "Events for
telemetry"), which the running terminal publishes as MQTT events of the same kind, and the
reasons a rollback gives. The terminal's side (slots, worker, the boot guard's I/O board
sync) writes them and the back office (backoffice.rollouts) counts them; both import the
names from here and nothing else spells them (tests/test_telemetry_contract.py).
"""

from enum import StrEnum


class UpdateEventKind(StrEnum):
    INSTALLED = "update_installed"  # version, slot, previous_version
    CONFIRMED = "update_confirmed"  # version, starts
    ROLLED_BACK = "update_rolled_back"  # from_version, to_version, starts, reason
    PROGRESS = "update_progress"  # rollout, version, state (kiosk.updates.rollout.OrderState)
    IOBOARD_FLASHED = "ioboard_flashed"  # firmware_version
    IOBOARD_FLASH_FAILED = "ioboard_flash_failed"  # reason


class RollbackReason(StrEnum):
    """Why update_rolled_back happened (its `reason` field)."""

    NOT_CONFIRMED = "not_confirmed"  # the boot guard: the trial used its starts unconfirmed
    TECHNICIAN = "technician"  # kiosk-tool update rollback


# The events that say where a terminal's software stands (a rollout counts these).
SOFTWARE_EVENTS = frozenset(
    {
        UpdateEventKind.INSTALLED,
        UpdateEventKind.CONFIRMED,
        UpdateEventKind.ROLLED_BACK,
        UpdateEventKind.PROGRESS,
    }
)
