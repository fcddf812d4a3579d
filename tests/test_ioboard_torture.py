"""Link torture: a noisy pseudo-terminal line and terminal restarts, and not one yuan astray.

Bit flips, dropped, duplicated and reordered bytes in both directions, while the board counts
cash and the terminal restarts at random points (also between journaling and acknowledging).
The suite runs a few thousand frames; drivers/ioboard/bench.run_link_bench() runs 100,000.
"""

from pathlib import Path

import pytest

from tests.bench_support.ioboard_link import torture_link


@pytest.mark.parametrize("seed", [1, 2])
def test_no_cash_event_is_lost_or_counted_twice_on_a_noisy_line_with_restarts(
    tmp_path: Path, seed: int
) -> None:
    result = torture_link(tmp_path / "board", frames=4000, seed=seed)

    assert result.cash_counted > 100
    assert result.lost == []
    assert result.counted_twice == []
    assert result.wrong_value == []
    assert result.cash_journaled == result.cash_counted
    # The line really was noisy and the terminal really restarted.
    assert result.injected_faults > 20 and result.retransmissions > 10
    assert result.host_restarts > 3
