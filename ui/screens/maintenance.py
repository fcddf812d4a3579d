"""The technician's screens: technician card plus PIN, then the maintenance page.

The maintenance page shows device status, prints a test receipt, closes the business day,
reprints a receipt by number, reads the I/O board and clears a tamper latch. Technician
text is English-first for the field staff but still goes through the catalogs
(maintenance.po).
"""

import functools
from collections.abc import Hashable
from dataclasses import replace

from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from ui.maintenance_desk import LABELS
from ui.screen_ids import ScreenId
from ui.screens.base import KioskScreen
from ui.screens.pin_entry import pin_entry
from ui.widgets import KioskButton, Look, button, column, spacer, text


class TechnicianScreen(KioskScreen):
    """A technician's page: high contrast follows the resident's switch, large text does
    not (the device report needs the room; the technician is not the one it helps)."""

    def look(self) -> Look:
        return replace(super().look(), scale=1.0)


class MaintenanceLoginScreen(TechnicianScreen):
    screen_id = ScreenId.MAINTENANCE_LOGIN
    title = "Maintenance"

    def shape(self) -> Hashable:
        return ("maintenance_login",)

    def body(self, look: Look) -> Widget:
        return pin_entry(
            self,
            look,
            self.controller.t("Insert your technician card and type your PIN"),
            error_font=28,
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.maintenance.submit_pin),
        ]


class MaintenanceScreen(TechnicianScreen):
    screen_id = ScreenId.MAINTENANCE
    title = "Maintenance"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        grid = GridLayout(cols=3, spacing=12, size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for action, label in LABELS.items():
            grid.add_widget(
                button(
                    look,
                    f"maint-{action}",
                    t(label),
                    functools.partial(c.maintenance.act, action),
                    font=25,
                )
            )
        return column(
            text(
                look,
                t("Technician: {id}").format(id=c.maintenance.technician or "-"),
                font=31,
            ),
            grid,
            text(look, c.maintenance.message, font=16, halign="left"),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            button(
                look,
                "leave",
                c.t("Leave maintenance"),
                c.maintenance.leave,
                kind="danger",
            )
        ]
