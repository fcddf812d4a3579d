"""What a terminal never ships: the simulated devices, platform, fleet and cards, and the demo.

Development, the tests and `make demo` run the real terminal core against these; the Pi's
bundle (deploy/release/build-bundle.sh) leaves the whole package out, and no shipped package
imports it (tests/test_import_direction.py). The composition root names the device
simulators by module only when a configuration asks for simulated devices
(station/composition.py), and says in one line when they are not installed. Harnesses and
benches are in tests/ (tests/fixtures, tests/bench_support).
"""
