"""The back office: MQTT ingest of the fleet, alerts, a web dashboard, reports and commands.

A separate deployable (docs/backoffice.md). It reads what terminals publish under the MQTT
contract (docs/mqtt.md), stores it (SQLite or PostgreSQL), and never imports terminal devices,
Kivy or hardware libraries; from kiosk/ it uses only canonical JSON, config parsing and i18n.
"""
