"""The demo station: `make demo` (simulators.demo.touchscreen on a desktop, or
simulators.demo.headless without a display), its devices' actions and the simulator panel."""
