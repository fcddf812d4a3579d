"""`make demo`'s headless walk shows one station operator's day, end to end (seed 002)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_headless_demo_walks_an_operators_day_that_balances(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulators.demo.headless", "--data", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    steps = [
        "The station's float is ¥0.00 (the credit line is zero)",
        "logged in with the operator card and PIN",
        ": pending",
        "the platform confirmed it: float ¥2000.00, pending ¥0.00",
        "1. Water bill",
        "2. Phone top-up",
        "3. Electricity card",
        "came back: paid out ¥20.00",
        "difference ¥0.00",
        "it balances (账账相符)",
        "日终轧帐单 Day close sheet",
        "Commission earned today",
        "sound,",
    ]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)  # in the order of the day
    assert "Traceback" not in done.stderr
