"""The back-office service: MQTT ingest, fleet dashboard and reports (issue: fleet telemetry)."""
