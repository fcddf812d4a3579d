"""The station's signing device: the PKCS#11 USBKey driver and the demo's software signer.

Both satisfy kiosk.signing.Signer. The software signer exists only for the demo and the
journal marks every record it signs as software-signed.
"""
