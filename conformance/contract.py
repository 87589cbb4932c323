"""CONTRACT.md, generated from the clause registry (never edited by hand).

Besides the clauses it renders the shared conventions
(`bottle_api.conventions.TABLE`), what the live harness needs of its host,
and per clause the suite's tests and the reference functions (`trace`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bottle_api.conventions import TABLE as CONVENTIONS

from .capabilities import Capability, Profile
from .clauses import CLAUSES, RESIDUAL_RISKS, SEED_MAP, TIERS, Clause
from .live.harness import FIXTURE_ENGINE_CLAUSES
from .outcomes import State
from .trace import ARGV_VOCABULARIES, REFERENCE, clause_tests

DEFAULT_PATH = Path("CONTRACT.md")

_STATE_DOCS = {
    State.PASSED: "the backend met the clause in every test that checks it",
    State.NOT_APPLICABLE: "the clause belongs to a profile the backend does not declare "
                          "(it drives no such tool): neither passed nor failed, and not asked "
                          "for by verify or certification",
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


def _layout() -> list[str]:
    return [
        "## Layout",
        "",
        "A backend implements the seam in `bottle_api.backend` (`Backend`, `Bottle`),",
        "runs every external command through the `bottle_api.runner.Runner` it is",
        "given (its guest readiness probe marked `purpose=READY`), and is found by an",
        "entry point of the `bottle.backends` group. The packages:",
        "",
        "| package | what | may import (of the project) |",
        "| --- | --- | --- |",
        "| `bottle_api` | the seam: spec, host, plan, runner, Backend/Bottle ABCs, registry, "
        "conventions | nothing |",
        "| `bottle_bundle` | the bundle daemons and the config formats they read | "
        "`bottle_api.conventions` |",
        "| `bottle_ref` | the reference backends `docker` and `smolmachines` | "
        "`bottle_api`, `bottle_bundle` |",
        "| `bottle_kit` | the author's toolkit: a versioned API over the reference's "
        "backend-neutral helpers (planning, CA, state, provisioning; CHANGELOG.md) | "
        "`bottle_api`, `bottle_ref` (never its backends, CLI or images) |",
        "| `conformance` | this suite | `bottle_api` |",
        "",
        "`nox -s lint` (import-linter, `[tool.importlinter]` in pyproject.toml) enforces",
        "the last column for `bottle_api`, `bottle_bundle`, `bottle_kit` and `conformance`.",
        "",
    ]


def _conventions() -> list[str]:
    out = [
        "## Conventions",
        "",
        "Facts every backend, the bundle and the suite share, from",
        "`bottle_api.conventions`:",
        "",
        "| Fact | Value | Note |",
        "| --- | --- | --- |",
    ]
    out += [f"| {_cell(f)} | `{_cell(v)}` | {_cell(n)} |" for f, v, n in CONVENTIONS]
    return out + [""]


def _harness_needs(clauses: Sequence[Clause]) -> list[str]:
    known = {c.id for c in clauses}
    out = [
        "## What the live harness needs",
        "",
        "The live tier probes from inside the guest through the backend's own",
        "`Bottle.exec`, so most live clauses need nothing of the host. These need the",
        "harness's own fixtures, which it runs on a docker-compatible engine: the",
        "`docker` CLI by default, `--bottle-fixture-engine podman` (or",
        "`BOTTLE_FIXTURE_ENGINE`) for another, at the address in `DOCKER_HOST` /",
        "`CONTAINER_HOST`. Without one they are ERROR (never PASSED); a backend without",
        "`Bottle.outbound_network()` gets NOT_SUPPORTED for the upstream ones.",
        "",
        "| Clause | Fixture |",
        "| --- | --- |",
    ]
    out += [f"| {cid} | {_cell(what)} |" for cid, what in FIXTURE_ENGINE_CLAUSES.items()
            if cid in known]
    out += [
        "",
        "The static tiers read argv of these tools: "
        + ", ".join(f"`{v}`" for v in ARGV_VOCABULARIES)
        + ". A backend driving another tool is recorded and snapshotted like any,",
        "but the clauses that must read engine argv cannot judge it.",
        "",
    ]
    return out


def _traceability(clauses: Sequence[Clause]) -> list[str]:
    tests = clause_tests()
    out = [
        "## Traceability",
        "",
        "Per clause: the suite's tests that check it (methods of",
        "`conformance.BackendConformance`, by tier) and where the reference",
        "implementation meets it.",
        "",
        "| ID | Tests | Reference |",
        "| --- | --- | --- |",
    ]
    for c in clauses:
        cells = []
        for tier in c.tiers:
            names = tests.get((c.id, tier), ())
            listed = ", ".join(f"`{n}`" for n in names) or "**none**"
            cells.append(f"{tier}: {listed}")
        ref = ", ".join(f"`{r}`" for r in REFERENCE.get(c.id, ())) or "-"
        out.append(f"| {c.id} | {'<br>'.join(cells)} | {ref} |")
    return out + [""]


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
        "tests check it, the profile it belongs to (core: every backend), the",
        "capability a backend must declare for it to apply (none: every backend), and",
        "where it was learned. Failure messages start with `[ID] sentence`, and the",
        "JUnit XML of a run carries `clause` and `clause_profile` properties.",
        "",
        *_layout(),
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
        "demote a clause other scenarios passed. `--bottle-certify` and",
        "`bottle-conformance verify --strict` pass when every MUST clause of core and of",
        "each declared profile PASSED; the report gives each profile's verdict.",
        "",
        "## Profiles",
        "",
        "The contract is a core every backend meets plus profiles tied to what a",
        "backend drives. A backend declares its profiles next to its capabilities",
        "(`Backend.profiles`); a clause of a profile it does not declare is",
        "NOT_APPLICABLE. PROFILE-DECLARED checks the declaration against the recorded",
        "argv, so a backend cannot dodge a profile's clauses by leaving it out.",
        "",
        "| Profile | A backend is in it when |",
        "| --- | --- |",
    ]
    out += [f"| `{p.value}` | {_cell(p.description)} |" for p in Profile]
    out += [
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
            "| ID | Level | Clause | Profile | Capability | Source |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {c.id} | {c.level} | {_cell(c.sentence)} | `{c.profile}` | "
            f"{f'`{c.capability}`' if c.capability else '-'} | {_cell(c.source)} |"
            for c in rows
        ]
        out.append("")
    out += _conventions()
    out += _harness_needs(clauses)
    out += _traceability(clauses)
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
