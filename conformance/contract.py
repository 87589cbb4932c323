"""CONTRACT.md, generated from the clause registry (never edited by hand)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .capabilities import Capability
from .clauses import CLAUSES, RESIDUAL_RISKS, SEED_MAP, TIERS, Clause
from .outcomes import State

DEFAULT_PATH = Path("CONTRACT.md")

_STATE_DOCS = {
    State.PASSED: "the backend met the clause in every test that checks it",
    State.FAILED: "a test showed the backend violating the clause (the failure names the ID)",
    State.NOT_SUPPORTED: "the clause needs a capability the backend does not declare; "
                         "never counts as passed (`--bottle-require CAP` makes it a failure)",
    State.ERROR: "the environment broke (e.g. no container engine), so nothing was shown",
    State.XFAIL: "a known, strict expected failure with a stated reason",
}

_TIER_TITLES = {
    "snapshot": "Argv snapshots",
    "invariant": "Invariants (hypothesis properties)",
    "live": "Live probes",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_contract(clauses: Sequence[Clause] = CLAUSES,
                    seed_map: Mapping[str, Sequence[str]] = SEED_MAP) -> str:
    """The full text of CONTRACT.md for ``clauses``."""
    out = [
        "# The bottle backend contract",
        "",
        "<!-- Generated from conformance/clauses.py by `bottle-conformance contract`."
        " Do not edit. -->",
        "",
        "## How to read it",
        "",
        "Each clause is one requirement with a stable ID. The key words MUST, MUST NOT",
        "and SHOULD are to be read as in RFC 2119. A clause lists the tier(s) whose",
        "tests check it, the capability a backend must declare for it to apply (none:",
        "every backend), and where it was learned. Failure messages start with",
        "`[ID] sentence`, and the JUnit XML of a run carries `clause` properties.",
        "",
        "## Result states",
        "",
        "| State | Meaning |",
        "| --- | --- |",
    ]
    out += [f"| {s} | {_cell(_STATE_DOCS[s])} |" for s in State]
    out += [
        "",
        "A clause checked by several tests takes the worst state among the tests",
        "that ran (FAILED > ERROR > XFAIL > PASSED); it is NOT_SUPPORTED only when",
        "none could run, so a scenario needing an undeclared capability does not",
        "demote a clause other scenarios passed. `--bottle-certify` fails the run",
        "unless every MUST clause PASSED.",
        "",
        "## Capabilities",
        "",
        "| Capability | Meaning |",
        "| --- | --- |",
    ]
    out += [f"| `{c.value}` | {_cell(c.description)} |" for c in Capability]
    out += ["", "Live-tier tests also need `live`.", ""]
    for tier in TIERS:
        rows = [c for c in clauses if tier in c.tiers]
        out += [
            f"## {_TIER_TITLES[tier]}",
            "",
            "| ID | Level | Clause | Capability | Source |",
            "| --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {c.id} | {c.level} | {_cell(c.sentence)} | "
            f"{f'`{c.capability}`' if c.capability else '-'} | {_cell(c.source)} |"
            for c in rows
        ]
        out.append("")
    out += [
        "## Seed bugs and the clauses that catch them",
        "",
        "| Seed bug | Clauses |",
        "| --- | --- |",
    ]
    out += [f"| {_cell(bug)} | {', '.join(ids)} |" for bug, ids in seed_map.items()]
    out += ["", "## Residual risks", ""]
    for title, text in RESIDUAL_RISKS:
        out += [f"### {title}", "", text, ""]
    return "\n".join(out).rstrip("\n") + "\n"


def is_current(path: Path) -> bool:
    """Whether ``path`` holds exactly what `render_contract` produces."""
    try:
        return path.read_text(encoding="utf-8") == render_contract()
    except FileNotFoundError:
        return False
