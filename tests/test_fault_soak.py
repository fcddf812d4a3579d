"""The short fault soak of `make test` (issue 16; the long one runs in `make bench`).

80 residents served by the terminal core in a child process killed with SIGKILL at random
instants (real processes, real signals), against the platform simulator in its own process
dropping answers after commit and answering gateway 4xx pages on every operation, with the
terminal's clock off by up to 20 minutes across restarts, cards pulled mid-credit and
topped up elsewhere, and link errors on the cash board; then settled without faults and
reconciled automatically (tests/soak, docs/transactions.md "Fault soak").
"""

from pathlib import Path

import pytest

from tests.soak.driver import SoakResult, SoakSettings, run_soak, soak_report_lines
from tests.soak.reconcile import CONFLICT_FOR_A_HELD_CREDIT

# Findings the soak reported that the engine does not fix yet, each with its focused test.
# The soak stays red for every other discrepancy; these make it xfail until they are gone.
KNOWN_FINDINGS = {
    CONFLICT_FOR_A_HELD_CREDIT: "tests/test_soak_findings.py::"
    "test_a_credit_applied_before_the_pull_is_not_a_conflict_after_a_load_elsewhere",
}

# Every fault family of the issue, by the names the soak counts them under.
FAULT_FAMILIES = {
    "answers lost after commit": ("timeout_after_commit",),
    "gateway 4xx pages": (":gateway",),
    "cash board link errors": ("link errors",),
    "cards pulled mid-credit": ("card_pulled_",),
    "cards topped up elsewhere": ("card_loaded_elsewhere",),
    "restarts with a wrong clock": ("clock blocked", "clock behind"),
    "kill -9": ("kill -9",),
}


def injected(result: SoakResult, needles: tuple[str, ...]) -> int:
    return sum(n for name, n in result.injected.items() if any(x in name for x in needles))


@pytest.mark.slow
def test_the_books_balance_after_a_short_fault_soak_with_kills(tmp_path: Path) -> None:
    result = run_soak(tmp_path / "soak", SoakSettings(residents=80, seed=1))
    report = "\n".join(soak_report_lines(result))
    assert not result.failures, report

    # A soak that injected nothing, or in which nothing was paid, proves nothing.
    for family, needles in FAULT_FAMILIES.items():
        assert injected(result, needles) > 0, f"no {family} were injected\n{report}"
    assert result.kills >= 3, report
    clock_refusals = sum(
        n for name, n in result.tallies.items() if "clock_wrong" in name or "stale_request" in name
    )
    assert clock_refusals > 0, f"no resident met the wrong clock\n{report}"
    checks = result.reconciliation.checks
    for check in (
        "posted = one paid close",
        "money conserved (paid)",
        "money conserved (not paid)",
        "no hold left held",
        "card balance = credits held + loads elsewhere",
        "voucher paid once",
        "voucher refused the second time",
        "journal verifies",
        # Residents paying by phone (issue #21).
        "paid order = one paid close",
        "money conserved (QR paid)",
        "no QR close has cash or a voucher",
    ):
        assert checks[check] > 0, f"nothing was checked by {check!r}\n{report}"

    found = result.reconciliation.discrepancies
    unknown = [d for d in found if not d.startswith(tuple(KNOWN_FINDINGS))]
    assert unknown == [], report
    if found:
        pytest.xfail(
            f"{len(found)} instance(s) of known soak findings, each reproduced by "
            + ", ".join(KNOWN_FINDINGS[d.split(":", 1)[0]] for d in sorted(set(found)))
        )
