"""The speed budgets, read from the one place they are stated: the table in
README.md's "Benchmarks" section (a row per budget: `| key | budget | how
measured |`). Each benchmark prints its budget and whether it met it.

    from budgets import budget
    limit = budget("static-tiers")   # seconds (or a ratio, for "lifecycle")
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_ROW = re.compile(r"^\|\s*`(?P<key>[a-z0-9-]+)`\s*\|\s*<\s*(?P<value>[0-9.]+)\s*(?P<unit>s|x)\s*\|")


class BudgetError(LookupError):
    pass


def budgets(text: str | None = None) -> dict[str, tuple[float, str]]:
    """Every budget of the README's "Benchmarks" table: key -> (limit, unit)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    _, found, section = text.partition("\n## Benchmarks\n")
    if not found:
        raise BudgetError(f"{README}: no '## Benchmarks' section")
    section = section.split("\n## ", 1)[0]
    out: dict[str, tuple[float, str]] = {}
    for line in section.splitlines():
        m = _ROW.match(line.strip())
        if m:
            out[m["key"]] = (float(m["value"]), m["unit"])
    return out


def budget(key: str) -> float:
    table = budgets()
    if key not in table:
        raise BudgetError(f"{README}: no budget row `{key}` in the Benchmarks table "
                          f"(rows: {', '.join(sorted(table)) or 'none'})")
    return table[key][0]


def verdict(value: float, limit: float, unit: str) -> str:
    """One line: the figure, the budget, and whether it was met."""
    met = "met" if value < limit else "NOT met"
    return f"{value:.2f}{unit} (budget < {limit:g}{unit}: {met})"
