"""The speed budgets are stated once, in README.md's Benchmarks table, and
each benchmark reads its own row from there (issue 19)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
import budgets  # noqa: E402


def test_the_readme_table_states_every_budget():
    table = budgets.budgets()
    assert table == {"unit": (60.0, "s"), "static-tiers": (8.0, "s"), "docker-live": (45.0, "s"),
                     "lifecycle": (1.25, "x"), "routed-up": (3.0, "s")}, table


@pytest.mark.parametrize(("script", "key"), [("static_tiers.py", "static-tiers"),
                                             ("lifecycle.py", "lifecycle"),
                                             ("unit.py", "unit"),
                                             ("live_docker.py", "docker-live")])
def test_each_benchmark_reads_its_row_and_states_no_figure_of_its_own(script, key):
    text = (BENCH / script).read_text(encoding="utf-8")
    assert f'budget("{key}")' in text
    assert "verdict(" in text, f"{script} must print its budget and whether it was met"
    # No limit written in the script itself (a number after 'target'/'budget' words).
    assert not re.search(r"(?i)(target|budget)\s*(<|under|:)?\s*[0-9.]+\s*(x|s)\b", text), script


def test_a_missing_row_is_one_clear_error(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmarks\n\n| budget | limit | how |\n|---|---|---|\n"
                      "| `unit` | < 60 s | nox |\n\n## Next\n| `lifecycle` | < 2x | not here |\n")
    monkeypatch.setattr(budgets, "README", readme)
    assert budgets.budgets() == {"unit": (60.0, "s")}
    with pytest.raises(budgets.BudgetError, match="no budget row `lifecycle`"):
        budgets.budget("lifecycle")
    assert budgets.verdict(61.0, 60.0, " s") == "61.00 s (budget < 60 s: NOT met)"
    assert budgets.verdict(1.2, 1.25, "x") == "1.20x (budget < 1.25x: met)"


def test_the_live_benchmark_finds_the_reason_a_slow_live_test_gives():
    """`bench/live_docker.py` names every live test over 10 s and the reason
    written in it; a test with none counts against the run."""
    import live_docker
    node = "tests/integration/test_live_docker.py::TestDockerConformance::"
    sweep = live_docker.reason_for(node + "test_guest_reaches_exactly_declared_endpoints[routed]",
                                   "call")
    assert sweep and "10 s" in sweep, sweep
    assert live_docker.reason_for(node + "test_token_only_in_egress[routed]", "call") is None
