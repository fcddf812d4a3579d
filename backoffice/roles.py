"""Staff roles and what each may do on the dashboard.

Owns the vocabulary (viewer < operator < admin) and the one table of which role an action
needs. The proxy names the user; the configuration gives the user a role (backoffice.staff).
"""

from enum import IntEnum, StrEnum


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The message id of the role's name in dashboard.po. The operator role's id is its
        own: "Operator" alone would be ambiguous with the station's 经办人员, and one id has one
        text across every catalog."""
        return "Staff operator" if self is Role.OPERATOR else self.name.capitalize()

    @classmethod
    def named(cls, name: str) -> "Role":
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(
                f"{name!r} is not a role; roles are {', '.join(r.name.lower() for r in cls)}"
            ) from None


class Action(StrEnum):
    """Everything staff do that changes something; each is recorded with who did it."""

    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    SEND_COMMAND = "send_command"
    REVOKE_TERMINAL = "revoke_terminal"
    # A staged rollout created, a stage sent to the fleet, or halted by hand (admin).
    MANAGE_ROLLOUT = "manage_rollout"
    # The station registry (backoffice.stations).
    REGISTER_STATION = "register_station"
    EDIT_STATION = "edit_station"
    SUSPEND_STATION = "suspend_station"
    REACTIVATE_STATION = "reactivate_station"
    EXIT_STATION = "exit_station"
    # The follow-up of bad ratings and complaints (backoffice.follow_up).
    HANDLE_FOLLOW_UP = "handle_follow_up"
    CLOSE_FOLLOW_UP = "close_follow_up"


# Commands that stop a terminal or change what it runs need an admin; the rest an operator.
ADMIN_COMMANDS = frozenset({"reboot", "install_catalog", "update"})


# Staff who answer residents handle and close follow-ups; changing who the back office serves
# (a station's agreement, its suspension or exit) is an admin's.
OPERATOR_ACTIONS = frozenset(
    {Action.ACKNOWLEDGE_ALERT, Action.HANDLE_FOLLOW_UP, Action.CLOSE_FOLLOW_UP}
)


def role_for(action: Action, command: str = "") -> Role:
    """The lowest role allowed to take the action (for a command: that command)."""
    if action in OPERATOR_ACTIONS:
        return Role.OPERATOR
    if action is Action.SEND_COMMAND:
        return Role.ADMIN if command in ADMIN_COMMANDS else Role.OPERATOR
    return Role.ADMIN
