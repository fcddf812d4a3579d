"""The technician's screens: technician card plus PIN, then the maintenance page.

The maintenance page shows device status, prints a test receipt, closes the business day,
reprints a receipt by number, reads the I/O board and clears a tamper latch. Technician
text is English-first for the field staff but still goes through the catalogs.
"""

from collections.abc import Hashable

from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from ui.screens.base import KioskScreen
from ui.widgets import KioskButton, Look, button, column, keypad, row, text


class MaintenanceLoginScreen(KioskScreen):
    title = "Maintenance"

    def shape(self) -> Hashable:
        return ("maintenance_login",)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        left = column(
            text(look, t("Insert your technician card and type your PIN"), font=32),
            self.live(
                text(look, "", font=56, bold=True), lambda: "*" * len(c.journey.digits) or "-"
            ),
            self.live(text(look, "", font=28, colour=look.palette.error), lambda: c.journey.error),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [*super().footer(look), button(look, "confirm", c.t("Confirm"), c.submit_pin)]


class MaintenanceScreen(KioskScreen):
    title = "Maintenance"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        grid = GridLayout(cols=3, spacing=12, size_hint_y=None)
        grid.height = (look.target_px + 12) * 2
        actions = [
            ("device_status", t("Device status")),
            ("test_receipt", t("Print a test receipt")),
            ("close_day", t("Close the business day")),
            ("io_status", t("I/O board status")),
            ("clear_tamper", t("Clear the tamper alarm")),
            ("reprint", t("Reprint a receipt")),
        ]
        for action, label in actions:
            if action == "reprint":
                grid.add_widget(
                    button(look, "maint-reprint", label, lambda: c.show("reprint"), font=26)
                )
            else:
                grid.add_widget(
                    button(
                        look,
                        f"maint-{action}",
                        label,
                        lambda action=action: c.maintenance_action(action),
                        font=26,
                    )
                )
        return column(
            text(look, t("Technician: {id}").format(id=c.technician or "-"), font=30, height=50),
            grid,
            text(look, c.maintenance_message, font=19, halign="left"),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            button(
                look,
                "leave",
                c.t("Leave maintenance"),
                lambda: c.maintenance_action("leave"),
                kind="danger",
            )
        ]
