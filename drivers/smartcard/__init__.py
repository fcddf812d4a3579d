"""The smartcard reader: prepaid utility IC cards and technician cards (real: PC/SC; simulator)."""
