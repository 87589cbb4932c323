"""The clause registry is well-formed and CONTRACT.md matches it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import clauses as registry
from conformance.capabilities import Capability
from conformance.clauses import CLAUSES, ID_PATTERN, SEED_MAP, TIERS, Clause, by_id
from conformance.contract import render_contract

CONTRACT = Path(__file__).resolve().parents[2] / "CONTRACT.md"


def test_contract_md_is_in_sync_with_the_registry():
    assert CONTRACT.exists(), "CONTRACT.md is missing; run `bottle-conformance contract`"
    assert CONTRACT.read_text(encoding="utf-8") == render_contract(), (
        "CONTRACT.md is out of date with conformance/clauses.py; "
        "run `bottle-conformance contract` and commit the result"
    )


def test_contract_lists_every_clause_once_per_tier():
    text = render_contract().split("\n## Conventions\n")[0]  # the tier tables
    for c in CLAUSES:
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {c.id} |")]
        assert len(rows) == len(c.tiers), c.id
        assert all(c.sentence.replace("|", "\\|") in row for row in rows)


def test_ids_are_unique_and_stable_shaped():
    ids = [c.id for c in CLAUSES]
    assert len(ids) == len(set(ids))
    for cid in ids:
        assert re.fullmatch(r"[A-Z]+(-[A-Z0-9]+)+", cid), cid
    assert ID_PATTERN.pattern == r"^[A-Z]+(-[A-Z0-9]+)+$"


def test_every_clause_has_a_named_constant():
    for c in CLAUSES:
        assert getattr(registry, c.id.replace("-", "_")) is c


def test_registry_covers_design_section_5():
    design = {
        "PLAN-PURE", "PLAN-HOP", "PLAN-DAEMONS", "EXEC-USER", "EXEC-TTY", "EXEC-RESUME",
        "SECRET-ARGV", "PORT-LOOPBACK", "CRED-EXP", "CRED-SHAPE", "CRED-CA", "PIPELOCK-PASS",
        "PIPELOCK-SCHEMA", "PROV-GITUSER", "PROV-GITGATE", "PROV-CA", "PROV-PROMPT",
        "PROV-SKILLS", "PROV-MCP", "LAUNCH-READY", "LIVE-SMOKE", "LIVE-LOOPBACK", "LIVE-BYPASS",
        "LIVE-PIPELOCK", "LIVE-AUTH", "LIVE-FAILCLOSED", "LIVE-TEARDOWN",
    }
    assert design <= {c.id for c in CLAUSES}


@pytest.mark.parametrize("c", CLAUSES, ids=lambda c: c.id)
def test_sentence_keyword_matches_level(c: Clause):
    words = set(re.findall(r"\b[A-Z]{3,}\b", c.sentence))
    assert c.level in words, f"{c.id}: a {c.level} clause must say {c.level}"
    other = "SHOULD" if c.level == "MUST" else "MUST"
    assert other not in words, f"{c.id}: a {c.level} clause must not also say {other}"
    assert c.sentence.endswith("."), c.id


@pytest.mark.parametrize("c", CLAUSES, ids=lambda c: c.id)
def test_clause_fields_are_valid(c: Clause):
    assert set(c.tiers) <= set(TIERS)
    assert c.capability is None or Capability(c.capability)
    assert c.source.strip()
    if c.tiers == ("live",):
        assert c.capability == Capability.LIVE, f"{c.id}: a live-only clause needs `live`"


def test_every_seed_bug_maps_to_existing_clauses():
    assert len(SEED_MAP) >= 10
    for bug, ids in SEED_MAP.items():
        assert ids, f"seed bug {bug!r} maps to no clause"
        for cid in ids:
            by_id(cid)  # raises KeyError naming the bad ID


def test_brief_clauses_exist_with_their_capabilities():
    expect = {
        "LAUNCH-PACK-IN-LAUNCH": None, "EXEC-ABI": None, "PROV-CA-ONE-ADDED": None,
        "PORT-EGRESS-ONLY-WHEN-ROUTED": None, "LIVE-CA-TRUST": Capability.LIVE,
        "EXEC-PTY-ABS": Capability.TTY, "PROV-MCP-USER": Capability.SUPERVISE,
        "CRED-EXP": Capability.CODEX, "CRED-CA": Capability.CODEX,
        "PROV-GITGATE": Capability.GIT_GATE, "PROV-MCP": Capability.SUPERVISE,
        "EXEC-TTY": Capability.TTY,
    }
    for cid, cap in expect.items():
        assert by_id(cid).capability == cap, cid


def test_by_id_unknown_suggests_close_match():
    with pytest.raises(KeyError, match="did you mean PLAN-PURE"):
        by_id("PLAN-PUR")


def test_clause_rejects_malformed_definitions():
    with pytest.raises(ValueError, match="does not match"):
        Clause("plan-pure", "MUST", "x MUST y.", "invariant")
    with pytest.raises(ValueError, match="level"):
        Clause("PLAN-X", "MAY", "x MAY y.", "invariant")
    with pytest.raises(ValueError, match="tier"):
        Clause("PLAN-X", "MUST", "x MUST y.", ("invariant", "fuzz"))


def test_every_capability_is_documented():
    for cap in Capability:
        assert len(cap.description) > 20, cap
        assert f"| `{cap.value}` | {cap.description} |" in render_contract()


# -- traceability, conventions, harness needs (issue 7) --------------------------


def _resolve_name(dotted: str):
    """``"pkg.mod:Qual.name"`` -> the object (imported HERE, in a test: the
    suite itself never imports bottle_ref)."""
    import importlib

    module, _, qual = dotted.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_reference_function_named_in_the_trace_exists():
    from conformance.trace import REFERENCE

    missing = []
    for cid, names in REFERENCE.items():
        for name in names:
            try:
                obj = _resolve_name(name)
            except (ImportError, AttributeError) as exc:
                missing.append(f"{cid}: {name} ({exc})")
                continue
            if not callable(obj):
                missing.append(f"{cid}: {name} is not a function or class")
    assert not missing, "; ".join(missing)


def test_trace_maps_every_clause_and_only_clauses():
    from conformance.trace import REFERENCE

    ids = {c.id for c in CLAUSES}
    assert not set(REFERENCE) - ids, f"trace names unknown clauses: {set(REFERENCE) - ids}"
    unmapped = sorted(ids - set(REFERENCE))
    assert not unmapped, (f"add the reference function(s) of {', '.join(unmapped)} "
                          "to conformance/trace.py REFERENCE")
    assert all(REFERENCE[i] for i in ids)


def test_trace_resolution_can_fail():
    with pytest.raises(AttributeError):
        _resolve_name("bottle_ref.provision:provision_nothing_at_all")


def test_contract_lists_tests_and_reference_per_clause():
    from conformance.trace import REFERENCE, clause_tests

    text = render_contract().split("\n## Traceability\n")[1].split("\n## ")[0]
    tests = clause_tests()
    for c in CLAUSES:
        (row,) = [ln for ln in text.splitlines() if ln.startswith(f"| {c.id} |")]
        for tier in c.tiers:
            assert tests.get((c.id, tier)), f"{c.id}: no test in tier {tier}"
            for name in tests[(c.id, tier)]:
                assert f"`{name}`" in row, (c.id, name)
        for ref in REFERENCE[c.id]:
            assert f"`{ref}`" in row, (c.id, ref)
    assert "**none**" not in text


def test_contract_renders_the_conventions_table():
    from bottle_api.conventions import PORTS, PROMPT_PATH, TABLE

    text = render_contract()
    for fact, value, _ in TABLE:
        assert f"| {fact} | `{value}` |" in text
    assert "| port of egress | `9099` |" in text and PORTS["egress"] == 9099
    assert PROMPT_PATH in text


def test_contract_describes_the_layout():
    text = render_contract()
    assert "A backend implements the seam in `bottle_api.backend`" in text
    for pkg in ("bottle_api", "bottle_bundle", "bottle_ref", "conformance"):
        assert f"| `{pkg}` |" in text


def test_fixture_engine_clauses_are_the_live_tests_that_use_the_engine():
    """CONTRACT.md's "What the live harness needs" is data; it must name
    exactly the live clauses whose tests stage upstream sites or touch the
    harness's engine."""
    import inspect

    from conformance.base import BackendConformance
    from conformance.live.harness import FIXTURE_ENGINE_CLAUSES
    from conformance.trace import clause_tests

    uses = set()
    for (cid, tier), names in clause_tests().items():
        if tier != "live":
            continue
        for name in names:
            src = inspect.getsource(getattr(BackendConformance, name.split(".", 1)[1]))
            if re.search(r"wait_ready|need_sites|need_engine|\.engine\b|_sentinels", src):
                uses.add(cid)
    assert uses == set(FIXTURE_ENGINE_CLAUSES), (uses ^ set(FIXTURE_ENGINE_CLAUSES))
