"""The station operator (经办人员) at the terminal: who may do what, and the day's money work.

Seed 002 gives the station's staff a money cycle of their own, apart from the residents'
payments and the technician's maintenance: buy float at the postal outlet and record each
purchase (续费) with its slip, watch the float (余额查询, 续费查询), close the day and print
the 轧帐单 (日终轧帐), empty and count the cash box (清机), pay out the vouchers residents
bring back, and reprint a receipt. kiosk.operator.desk.OperatorDesk offers these as calls,
each allowed by a role's permissions (kiosk.operator.roles) and journaled with who did it;
the operator logs in with an operator card and its PIN (kiosk.operator.session). The
screens are a client of OperatorDesk; kiosk-tool and the back office's remote commands act
through it too, under their own roles.
"""

from kiosk.operator.desk import OperatorDesk
from kiosk.operator.roles import Actor, NotPermitted, Permission, Role

__all__ = ["Actor", "NotPermitted", "OperatorDesk", "Permission", "Role"]
