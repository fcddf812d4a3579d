"""The link torture run: a noisy line and host restarts against the real firmware, cash checked.

torture_link() runs the host driver against the bench board (simulators/ioboard_board.py) over
a pseudo-terminal that flips bits and drops, duplicates and reorders bytes in both directions,
while the board keeps counting cash and the "terminal" is restarted at random points (also
between journaling an event and acknowledging it). At the end the line is made clean, the
journal is drained, and every counted event must be journaled exactly once with its value.
run_link_bench() does it for 100,000 frames and prints goodput and retransmission rate.
"""

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.ioboard.host import IoBoardNotAnswering, SerialIoBoard
from simulators.ioboard_board import BoardHarness, LineFaults

# Per byte, both directions: about one frame in twenty arrives damaged.
BIT_FLIP, DROP, DUPLICATE, REORDER = 1e-3, 5e-4, 5e-4, 5e-4
CASH_VALUES_FEN = (
    (("note", 100), ("note", 500), ("note", 1000), ("note", 2000)),
    (("note", 5000), ("note", 10000), ("coin", 10), ("coin", 100)),
)


@dataclass
class TortureResult:
    frames: int
    requests: int
    retransmissions: int
    damaged_frames: int
    failed_calls: int
    host_restarts: int
    injected_faults: int
    cash_counted: int
    cash_journaled: int
    lost: list[str]
    counted_twice: list[str]
    wrong_value: list[str]
    seconds: float

    @property
    def retransmission_rate(self) -> float:
        return self.retransmissions / max(1, self.requests)

    @property
    def goodput_requests_per_s(self) -> float:
        return (self.requests - self.failed_calls) / max(1e-9, self.seconds)


def _new_driver(port: str) -> SerialIoBoard:
    return SerialIoBoard(port, reply_timeout_s=0.05, attempts=8)


def torture_link(state_dir: Path, frames: int, seed: int = 1) -> TortureResult:
    rng = random.Random(seed)
    faults = LineFaults(BIT_FLIP, DROP, DUPLICATE, REORDER, rng=random.Random(seed + 1))
    harness = BoardHarness(state_dir, faults=faults)
    harness.start()
    counted: dict[int, int] = {}  # board event number -> value in fen
    journal: dict[str, int] = {}  # what the terminal journaled: event id -> value
    wrong: list[str] = []
    totals = {"frames": 0, "requests": 0, "retransmissions": 0, "damaged_frames": 0}
    failed = restarts = 0
    started = time.monotonic()
    driver = _new_driver(harness.port)

    def retire(old: SerialIoBoard) -> None:
        for key in totals:
            if key == "frames":
                totals[key] += old.stats["frames_sent"] + old.stats["frames_received"]
            else:
                totals[key] += old.stats[key]
        old.close()

    def live_frames() -> int:
        return totals["frames"] + driver.stats["frames_sent"] + driver.stats["frames_received"]

    def journal_and_acknowledge(restart_between: bool) -> bool:
        for event in driver.pending():
            if event.event_id in journal:
                if journal[event.event_id] != event.value_fen:
                    wrong.append(event.event_id)
            else:
                journal[event.event_id] = event.value_fen
            if restart_between:
                return True  # the terminal dies after journaling, before acknowledging
            driver.acknowledge(event.event_id)
        return False

    try:
        while live_frames() < frames:
            if rng.random() < 0.4:
                kind, value = rng.choice(rng.choice(CASH_VALUES_FEN))
                counted[harness.count(kind, value)] = value
            restart = rng.random() < 0.01
            try:
                died = journal_and_acknowledge(restart)
            except IoBoardNotAnswering:
                failed += 1
                died = False
            if restart or died:
                retire(driver)
                restarts += 1
                driver = _new_driver(harness.port)
        # A clean line again: everything still on the board must now reach the journal.
        harness.faults = None
        while True:
            try:
                if not driver.pending():
                    break
                journal_and_acknowledge(False)
            except IoBoardNotAnswering:
                failed += 1
        board_id = driver.identify()["board_id"]
    finally:
        retire(driver)
        harness.stop()
    expected = {f"{board_id}-{number}": value for number, value in counted.items()}
    for event_id, value in journal.items():
        if expected.get(event_id, value) != value:
            wrong.append(event_id)
    return TortureResult(
        frames=totals["frames"],
        requests=totals["requests"],
        retransmissions=totals["retransmissions"],
        damaged_frames=totals["damaged_frames"],
        failed_calls=failed,
        host_restarts=restarts,
        injected_faults=faults.injected,
        cash_counted=len(counted),
        cash_journaled=len(journal),
        lost=sorted(set(expected) - set(journal)),
        # The journal is keyed by event id (the core's dedupe); cash counted twice would show
        # as an id the board never gave to a counted event.
        counted_twice=sorted(set(journal) - set(expected)),
        wrong_value=sorted(set(wrong)),
        seconds=time.monotonic() - started,
    )


def run_link_bench(frames: int = 100_000) -> TortureResult:
    """The full link torture; prints its figures (`make bench`)."""
    with tempfile.TemporaryDirectory(prefix="ioboard-bench-") as directory:
        result = torture_link(Path(directory) / "board", frames)
    print(
        f"ioboard link: {result.frames} frames in {result.seconds:.1f} s, "
        f"goodput {result.goodput_requests_per_s:.0f} requests/s, "
        f"retransmission rate {result.retransmission_rate:.2%}, "
        f"{result.damaged_frames} damaged frames seen by the host, "
        f"{result.injected_faults} faults injected, {result.host_restarts} host restarts, "
        f"{result.failed_calls} calls failed and retried; "
        f"cash: {result.cash_counted} counted, {result.cash_journaled} journaled, "
        f"{len(result.lost)} lost, {len(result.counted_twice)} counted twice, "
        f"{len(result.wrong_value)} wrong value"
    )
    return result


if __name__ == "__main__":
    run_link_bench()
