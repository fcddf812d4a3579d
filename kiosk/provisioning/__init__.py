"""Provisioning of a terminal's identity: token, station key, certificate, config, registration.

Owns the plan of idempotent steps `kiosk-tool provision` runs and the archive of station
certificates that keeps old journal records verifiable after a renewal. It never touches a
PKCS#11 module itself (drivers.token does, behind the StationToken interface) and never
writes a PIN or a private key anywhere.
"""
