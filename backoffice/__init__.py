"""The back office: MQTT ingest of the fleet, alerts, a web dashboard, reports and commands.

A separate deployable (docs/backoffice.md). It reads what terminals publish under the MQTT
contract (docs/mqtt.md), verifies and stores it (SQLite or PostgreSQL), and never imports
terminal devices, Kivy or hardware libraries; from kiosk/ it uses the wire contracts
(kiosk.telemetry topics, records, event kinds, schemas), the journal's canonical JSON and
signature rule, config parsing, sd_notify and i18n.
"""
