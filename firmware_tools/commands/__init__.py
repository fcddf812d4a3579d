"""One module per kiosk-tool command group, each exposing register(subparsers)."""
