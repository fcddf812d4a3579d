"""Who may do what at the terminal: roles, their permissions, and the actor of an action.

Seed 002 gives each station "users and permissions" (设置相应权限). Three roles act on the
station's money here, apart from the residents:
- the station operator (经办人员), with an operator card and PIN at the kiosk: every money
  action of the day;
- the field technician, with kiosk-tool on the terminal (or the technician card): records a
  deposit the operator bought, closes the day, looks at the float and reprints, but never
  handles the station's cash (collection and voucher payout need the operator's card);
- the back office, by signed remote command: records a deposit and closes the day.
Pure: a table and a check, no I/O.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from kiosk.errors import TranslatedError


class Role(StrEnum):
    OPERATOR = "operator"
    TECHNICIAN = "technician"
    BACK_OFFICE = "back_office"


class Permission(StrEnum):
    RECORD_DEPOSIT = "record_deposit"
    VIEW_FLOAT = "view_float"  # float, holds, today's business, deposits history
    CLOSE_DAY = "close_day"  # and print the day sheet (轧帐单)
    COLLECT_CASH = "collect_cash"  # empty and count the cash box (清机)
    PAY_VOUCHER = "pay_voucher"  # cash out from the box
    REPRINT = "reprint"  # a receipt, by its number


PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.OPERATOR: frozenset(Permission),
        Role.TECHNICIAN: frozenset(
            {
                Permission.RECORD_DEPOSIT,
                Permission.VIEW_FLOAT,
                Permission.CLOSE_DAY,
                Permission.REPRINT,
            }
        ),
        Role.BACK_OFFICE: frozenset(
            {Permission.RECORD_DEPOSIT, Permission.VIEW_FLOAT, Permission.CLOSE_DAY}
        ),
    }
)

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
NOT_PERMITTED = "{who} ({role}) may not {action}: an operator card is needed."
MESSAGE_IDS = (NOT_PERMITTED,)


class NotPermitted(TranslatedError):
    """The actor's role does not allow the action."""


@dataclass(frozen=True)
class Actor:
    """Who does an action: an id (the operator card's, a technician's name, a command id)
    and the role it acts in. Journaled as `by` and `role` on every record of the action."""

    id: str
    role: Role

    def __post_init__(self) -> None:
        if not self.id or not self.id.isprintable() or len(self.id) > 64:
            raise ValueError(f"an actor id is 1-64 printable characters, not {self.id!r}")

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise NotPermitted(
                NOT_PERMITTED, who=self.id, role=str(self.role), action=str(permission)
            )
