"""The typed report: JSON round trip, aggregation, verify, markdown, and the CLI."""

from __future__ import annotations

import json

import pytest

from conformance.cli import main
from conformance.clauses import CLAUSES, MUST, SHOULD
from conformance.outcomes import State, worst
from conformance.report import ClauseResult, Report, ReportError, aggregate, markdown, verify
from conformance.results import summary_line

MUSTS = [c for c in CLAUSES if c.level == MUST]
SHOULDS = [c for c in CLAUSES if c.level == SHOULD]


def result(clause, state=State.PASSED, reason="", duration=0.5) -> ClauseResult:
    return ClauseResult(clause.id, clause.level, clause.tiers, state, reason, duration)


def make_report(results) -> Report:
    return Report(
        suite_version="0.1.0", backend="fake", backend_version="1.2",
        capabilities=("codex", "live"), hypothesis_profile="ci", hypothesis_seed="42",
        started_at="2025-01-01T00:00:00+00:00", results=tuple(results),
    )


def all_passed() -> Report:
    return make_report(result(c) for c in CLAUSES)


def test_json_round_trip_keeps_every_field():
    report = make_report([
        result(MUSTS[0], State.FAILED, "t: boom | pipe", 1.25),
        result(MUSTS[1], State.XFAIL, "xfail: known"),
    ])
    again = Report.from_json(report.to_json())
    assert again == report
    assert isinstance(again.results[0].state, State)
    assert json.loads(report.to_json())["results"][0]["state"] == "FAILED"


@pytest.mark.parametrize("text,message", [
    ("{", "not JSON"),
    ("[]", "top level is not an object"),
    ('{"schema": 99}', "unsupported report schema 99"),
    ('{"schema": 1, "results": []}', "missing field 'suite_version'"),
])
def test_from_json_rejects_non_reports_clearly(text, message):
    with pytest.raises(ReportError, match=message.replace("(", r"\(")):
        Report.from_json(text)


def test_from_json_rejects_unknown_state():
    data = json.loads(make_report([result(MUSTS[0])]).to_json())
    data["results"][0]["state"] = "GREAT"
    with pytest.raises(ReportError, match="GREAT"):
        Report.from_json(json.dumps(data))


def test_worst_state_order():
    assert worst(State.PASSED, State.NOT_SUPPORTED) == State.NOT_SUPPORTED
    assert worst(State.NOT_SUPPORTED, State.XFAIL) == State.XFAIL
    assert worst(State.XFAIL, State.ERROR) == State.ERROR
    assert worst(State.ERROR, State.FAILED, State.PASSED) == State.FAILED


def test_clause_state_ignores_not_supported_when_another_test_ran():
    from conformance.outcomes import clause_state

    assert clause_state(State.PASSED, State.NOT_SUPPORTED) == State.PASSED
    assert clause_state(State.NOT_SUPPORTED, State.NOT_SUPPORTED) == State.NOT_SUPPORTED
    assert clause_state(State.NOT_SUPPORTED, State.ERROR) == State.ERROR
    assert clause_state(State.PASSED, State.NOT_SUPPORTED, State.FAILED) == State.FAILED
    merged = aggregate([result(MUSTS[0], State.NOT_SUPPORTED, "codex scenario"),
                        result(MUSTS[0], State.PASSED)])
    assert merged[0].state == State.PASSED


def test_aggregate_worst_state_wins_and_sums_durations():
    a, b = MUSTS[0], MUSTS[1]
    merged = aggregate([
        result(b, State.PASSED, duration=1.0),
        result(a, State.PASSED, duration=1.0),
        result(a, State.FAILED, "t2: boom", 2.0),
        result(a, State.NOT_SUPPORTED, "t3: no tty", 0.5),
    ])
    assert [r.clause_id for r in merged] == [a.id, b.id]  # registry order
    assert merged[0].state == State.FAILED
    assert merged[0].reason == "t2: boom"
    assert merged[0].duration_s == pytest.approx(3.5)
    assert merged[1].state == State.PASSED


def test_verify_accepts_a_complete_passing_report():
    assert verify(all_passed()) == []
    assert verify(all_passed(), strict=True) == []


def test_verify_reports_missing_must_clause():
    report = make_report(result(c) for c in CLAUSES if c is not MUSTS[3])
    assert verify(report) == [f"{MUSTS[3].id} (MUST): not in the report (no test ran)"]


@pytest.mark.parametrize("state,plain,strict", [
    (State.FAILED, True, True),
    (State.ERROR, True, True),
    (State.NOT_SUPPORTED, False, True),
    (State.XFAIL, False, True),
    (State.PASSED, False, False),
])
def test_verify_flags_must_states(state, plain, strict):
    target = MUSTS[2]
    report = make_report(result(c, state if c is target else State.PASSED, "why") for c in CLAUSES)
    expected = [f"{target.id} (MUST): {state}: why"]
    assert verify(report) == (expected if plain else [])
    assert verify(report, strict=True) == (expected if strict else [])


def test_verify_ignores_should_clauses():
    assert SHOULDS, "the registry should have at least one SHOULD clause"
    report = make_report(
        result(c, State.FAILED if c.level == SHOULD else State.PASSED) for c in CLAUSES
    )
    assert verify(report, strict=True) == []


def test_verify_flags_clause_unknown_to_this_suite():
    report = make_report([*all_passed().results,
                          ClauseResult("NEW-THING", MUST, ("live",), State.PASSED)])
    assert verify(report) == ["NEW-THING: not a clause of this suite version"]


def test_markdown_has_run_facts_and_one_escaped_row_per_clause():
    report = make_report([
        result(MUSTS[0], State.FAILED, "t: a | b\nsecond line", 1.234),
        result(MUSTS[1]),
    ])
    text = markdown(report)
    assert text.startswith("# bottle-conformance report: fake 1.2\n")
    assert "- capabilities: codex, live" in text
    assert "- hypothesis profile: ci (seed 42)" in text
    assert "- clauses: 2 (1 PASSED, 1 FAILED)" in text
    rows = [ln for ln in text.splitlines() if ln.startswith(f"| {MUSTS[0].id} ")]
    assert rows == [
        f"| {MUSTS[0].id} | MUST | {'+'.join(MUSTS[0].tiers)} | FAILED | 1.23 | "
        "t: a \\| b second line |"
    ]
    assert text.count("\n| ") == 2 + 2  # header, rule, two rows


def test_summary_line_counts_states_and_missing_musts():
    report = make_report([result(MUSTS[0]), result(MUSTS[1], State.NOT_SUPPORTED)])
    assert summary_line(report, CLAUSES) == (
        f"fake 1.2: 2 clauses: 1 PASSED, 1 NOT_SUPPORTED; {len(MUSTS) - 2} MUST clauses not run"
    )
    assert summary_line(make_report([result(c) for c in MUSTS]), CLAUSES).startswith(
        f"fake 1.2: {len(MUSTS)} clauses: {len(MUSTS)} PASSED"
    )
    assert summary_line(make_report([result(MUSTS[0])]), MUSTS[:1]) == "fake 1.2: 1 clause: 1 PASSED"
    assert summary_line(all_passed(), CLAUSES) == (
        f"fake 1.2: {len(CLAUSES)} clauses: {len(CLAUSES)} PASSED"
    )


# -- CLI ---------------------------------------------------------------------------


def test_cli_report_prints_markdown(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(all_passed().to_json())
    assert main(["report", str(path)]) == 0
    assert capsys.readouterr().out == markdown(all_passed())


def test_cli_verify_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(all_passed().to_json())
    bad.write_text(make_report([result(c) for c in CLAUSES if c is not MUSTS[0]]).to_json())
    assert main(["verify", str(good)]) == 0
    assert "OK (fake 1.2" in capsys.readouterr().out
    assert main(["verify", str(bad)]) == 1
    assert f"{MUSTS[0].id} (MUST): not in the report" in capsys.readouterr().out


def test_cli_verify_strict_flags_not_supported(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(make_report(
        result(c, State.NOT_SUPPORTED if c is MUSTS[0] else State.PASSED) for c in CLAUSES
    ).to_json())
    assert main(["verify", str(path)]) == 0
    assert main(["verify", "--strict", str(path)]) == 1


def test_cli_bad_input_is_a_clean_error(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["verify", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "nope.json" in err and "cannot read" in err and "Traceback" not in err
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    assert main(["report", str(junk)]) == 2
    assert "not JSON" in capsys.readouterr().err


def test_cli_contract_write_then_check(tmp_path, capsys):
    path = tmp_path / "CONTRACT.md"
    assert main(["contract", "--check", "--output", str(path)]) == 1
    assert "run `bottle-conformance contract`" in capsys.readouterr().out
    assert main(["contract", "--output", str(path)]) == 0
    assert main(["contract", "--check", "--output", str(path)]) == 0
    path.write_text(path.read_text().replace("MUST", "MAY", 1))
    assert main(["contract", "--check", "--output", str(path)]) == 1


def test_python_dash_m_is_the_same_cli(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "r.json"
    path.write_text(all_passed().to_json())
    proc = subprocess.run([sys.executable, "-m", "conformance", "verify", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "OK (fake 1.2" in proc.stdout


def test_from_json_rejects_a_clause_listed_twice():
    data = json.loads(make_report([result(MUSTS[0])]).to_json())
    data["results"].append(dict(data["results"][0], state="FAILED"))
    with pytest.raises(ReportError, match="listed twice"):
        Report.from_json(json.dumps(data))


def test_standins_round_trip_show_in_markdown_and_merge_per_backend():
    """A run on a test-only stand-in says so (JSON and markdown); tests of
    one backend merge what they used, other backends' reports stay clean."""
    from types import SimpleNamespace

    from conformance.results import (PROP_BACKEND, PROP_CLAUSE, PROP_STANDINS,
                                     ResultCollector, build_reports)

    report = Report(**{**make_report([result(MUSTS[0])]).__dict__,
                       "standins": {"smolvm": "stand-in (smolvm 1.9.3)"}})
    again = Report.from_json(report.to_json())
    assert again.standins == {"smolvm": "stand-in (smolvm 1.9.3)"}
    assert "- smolvm: stand-in (smolvm 1.9.3)" in markdown(again).splitlines()
    assert not any(ln.startswith("- smolvm") for ln in markdown(make_report([])).splitlines())
    legacy = json.loads(make_report([]).to_json())
    del legacy["standins"]
    assert Report.from_json(json.dumps(legacy)).standins == {}

    collector = ResultCollector()
    for i, (backend, used) in enumerate([("smol", {"smolvm": "stand-in"}),
                                         ("smol", {"pipelock": "stand-in"}), ("dock", None)]):
        props = [(PROP_CLAUSE, MUSTS[0].id), (PROP_BACKEND, backend)]
        if used:
            props.append((PROP_STANDINS, json.dumps(used)))
        collector.add(SimpleNamespace(nodeid=f"t{i}", user_properties=props, duration=0.1,
                                      passed=True, skipped=False, when="call", longrepr=None))
    reports = {r.backend: r for r in build_reports(
        collector, selected=None, suite_version="0", hypothesis_profile="ci",
        hypothesis_seed=None, started_at="now")}
    assert reports["smol"].standins == {"pipelock": "stand-in", "smolvm": "stand-in"}
    assert reports["dock"].standins == {}


# -- profiles (issue 18) -------------------------------------------------------------


def _profiled(profiles, state_of=lambda c: State.PASSED) -> Report:
    from dataclasses import replace
    declared = {"core", *profiles}
    rows = [result(c, state_of(c) if c.profile in declared else State.NOT_APPLICABLE,
                   "" if c.profile in declared else "NOT_APPLICABLE: not declared")
            for c in CLAUSES]
    return replace(make_report(rows), profiles=("core", *profiles))


def test_verify_asks_only_for_core_and_declared_profiles():
    from conformance.report import profile_verdicts
    report = _profiled(("docker-cli", "container-guest"))
    assert verify(report, strict=True) == []
    verdicts = profile_verdicts(report)
    assert [v.profile for v in verdicts] == ["core", "docker-cli", "container-guest"]
    assert all(v.passed for v in verdicts)
    assert "- profile smolvm" not in markdown(report)
    assert "- profile core: PASSED (" in markdown(report)
    assert "- profiles not declared (their clauses NOT_APPLICABLE): smolvm" in markdown(report)


def test_a_not_applicable_clause_of_a_declared_profile_is_a_problem():
    from dataclasses import replace
    report = _profiled(("docker-cli", "container-guest"))
    report = replace(report, profiles=("core", "docker-cli", "container-guest", "smolvm"))
    problems = verify(report)
    smolvm_must = {c.id for c in MUSTS if c.profile == "smolvm"}
    assert smolvm_must and {p.split(" ")[0] for p in problems} == smolvm_must
    assert all("NOT_APPLICABLE" in p for p in problems)


def test_profile_verdict_names_the_failing_profile():
    from conformance.report import profile_verdicts
    report = _profiled(("docker-cli", "smolvm"),
                       lambda c: State.NOT_SUPPORTED if c.id == "SMOLVM-ARGV" else State.PASSED)
    assert verify(report) == []
    assert verify(report, strict=True) == [
        "SMOLVM-ARGV (MUST): NOT_SUPPORTED"]
    lines = {v.profile: v.line() for v in profile_verdicts(report)}
    assert lines["core"].startswith("core: PASSED")
    assert lines["smolvm"].startswith("smolvm: FAILED (1 of ") and "SMOLVM-ARGV" in lines["smolvm"]


def test_profiles_round_trip_and_default_to_core():
    report = _profiled(("smolvm",))
    assert Report.from_json(report.to_json()).profiles == ("core", "smolvm")
    data = json.loads(report.to_json())
    del data["profiles"]
    assert Report.from_json(json.dumps(data)).profiles == ("core",)
    data["profiles"] = "smolvm"
    with pytest.raises(ReportError, match="profiles must be a list of strings"):
        Report.from_json(json.dumps(data))


def test_unknown_profile_in_a_report_is_a_problem():
    from dataclasses import replace
    report = replace(all_passed(), profiles=("core", "k8s"))
    assert "profile k8s: not a profile of this suite version" in verify(report)
