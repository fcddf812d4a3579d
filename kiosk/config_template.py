"""Writes a complete, commented configuration file (what `kiosk-tool config init` produces).

tomli-w cannot write comments, and a technician reads this file, so the template is text
with every value rendered as a TOML literal by tomli-w.
"""

from typing import Any

import tomli_w


def _value(value: Any) -> str:
    # tomli_w renders a one-key table as `k = <literal>`; keep only the literal.
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def render_config(
    *,
    institution_no: str,
    station_name: str,
    terminal_id: str,
    data_dir: str,
    platform_url: str,
    token: dict[str, Any],
    devices: str = "sim",
    timezone: str = "Asia/Shanghai",
    day_cutoff: str = "23:30",
    low_float_threshold_fen: int = 100_000,
    broker_host: str = "",
    mqtt_files: dict[str, str] | None = None,
) -> str:
    mqtt_files = mqtt_files or {}
    token_lines = "\n".join(f"{key} = {_value(value)}" for key, value in token.items())
    return f"""\
# Configuration of one self-service payment terminal. Every key is checked at start:
# a missing, unknown or wrongly typed key stops the terminal with the key's name.

# Where the journal, the transaction database, receipts and simulator state live.
data_dir = {_value(data_dir)}

[station]
institution_no = {_value(institution_no)}   # 机构号: must match the station certificate
name = {_value(station_name)}               # shown on screen and printed on receipts
terminal_id = {_value(terminal_id)}
address = ""               # printed on receipts and slips and shown on the help screen
service_hours = "08:00-20:00"  # staff at the station (they pay vouchers out), HH:MM-HH:MM
phone = ""                 # the station's telephone, on receipts, slips and the help screen
hotline = ""               # the operator's help hotline (服务热线), e.g. "11185": on screen too

[platform]
url = {_value(platform_url)}   # the operator's platform (bill lookup, posting, float)
timeout_s = 5.0                 # per request; money requests are idempotent and retried
retries = 3

[token]
# The station's signing key and certificate. kind = "pkcs11" for the USBKey (or SoftHSM2);
# "software" only for a demo: every record it signs says so in the journal.
# key_type: "p256", "rsa2048" or "sm2" (国密; then sm2_mechanism = the vendor's CKM number).
# Instead of module, label, key_label and pin_source, one RFC 7512 URI may be given (not both):
# uri = "pkcs11:token=kiosk;object=station;type=private?module-path=/usr/lib/p11.so\
# &pin-source=file:/etc/kiosk/token.pin" (one line)
{token_lines}

[devices]
# "sim" runs the simulator of a device; "real" the driver for the physical device.
printer = {_value(devices)}
printer_port = {_value("/dev/kiosk-printer" if devices == "real" else "")}   # udev name
printer_model = "auto"     # "auto" or a model of docs/printer.md (epson-compatible, clone-58...)
printer_confirm = "auto"   # job confirmation: "auto", "process_id" (GS ( H) or "status_poll"
printer_transport = "auto" # "auto" (usblp for /dev/usb/lp*), "serial" or "usblp"
paper_width_mm = 58        # 58 (32 columns) or 80 (48 columns)
card_reader = {_value(devices)}
reader_name = ""           # PC/SC reader: name, start of it or glob ("ACS*"); empty: first
cash = {_value(devices)}              # the cash inlets are on the I/O board
ioboard = {_value(devices)}           # door, tamper, lamp, watchdog; "none" only for development
ioboard_port = {_value("/dev/kiosk-ioboard" if devices == "real" else "")}
# The payment-code scanner (付款码, docs/scanner.md): "real" with scanner_port where one is
# fitted (/dev/kiosk-scanner: HID or serial, told apart by the driver); "none": no scanner.
scanner = {_value("sim" if devices == "sim" else "none")}
scanner_port = ""

[business]
day_cutoff = {_value(day_cutoff)}    # local time at which the business day closes (日终轧帐)
timezone = {_value(timezone)}
low_float_threshold_fen = {low_float_threshold_fen}   # warn below this float balance (in fen)
catalog_file = ""          # empty: the signed catalog shipped with the software
operator_key_file = ""     # empty: the operator key shipped with the software
voucher_valid_days = 180   # a refund voucher can be paid out this many days after its issue
collect_timeout_s = 300    # a payment nobody touches this long is cancelled (cash: voucher)

[telemetry]
# The operator's MQTT broker (docs/mqtt.md). Empty broker_host: no telemetry (bench, demo).
# A fleet terminal names its TLS files (deploy/mosquitto/dev-ca.sh makes development ones).
broker_host = {_value(broker_host)}
broker_port = 8883
ca_file = {_value(mqtt_files.get("ca_file", ""))}
cert_file = {_value(mqtt_files.get("cert_file", ""))}         # CN "<机构号>/<terminal id>"
key_file = {_value(mqtt_files.get("key_file", ""))}
backoffice_key_file = {_value(mqtt_files.get("backoffice_key_file", ""))}  # checks commands
heartbeat_interval_s = 120   # the defaults keep one terminal under 1 MB a day on the wire
health_interval_s = 900

[updates]
root = "/opt/kiosk"        # the A/B software slots (kiosk-tool update; docs/updates.md)
"""
