"""The pieces of `make bench` (tests/bench.py): what is measured, on what, and how it is summed up.

Owns the benchmark's token, its throw-away terminal databases and the timing of them. It never
asserts on a time: it measures and reports figures (DESIGN.md: speed targets are measured by
benchmarks that print figures, not by timed tests).
"""
