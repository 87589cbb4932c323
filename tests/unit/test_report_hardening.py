"""`bottle-conformance report|verify` on hostile input: one line, exit 2,
never a traceback or a hang; linear time; `verify --tier` scope."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.clauses import CLAUSES
from conformance.outcomes import State
from conformance.report import ClauseResult, Report, ReportError, markdown, profile_verdicts, verify


def _report(results=(), **kw) -> Report:
    base = dict(suite_version="0.1.0", backend="fake", backend_version="1",
                capabilities=("codex",), hypothesis_profile="ci", hypothesis_seed=None,
                started_at="2025-01-01T00:00:00+00:00", results=tuple(results))
    base.update(kw)
    return Report(**base)


def _all(state=State.PASSED, tiers=None):
    return [ClauseResult(c.id, c.level, c.tiers, state, "", 0.1) for c in CLAUSES
            if tiers is None or set(c.tiers) & set(tiers)]


def _valid() -> dict:
    return json.loads(_report(_all()).to_json())


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_exit_2(capsys, *argv) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("cmd", ["report", "verify"])
@pytest.mark.parametrize("payload,phrase", [
    (b"\xff\xfe{\"schema\": 1}", "not UTF-8"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"schema": 1, "x": ' + b"9" * 50_000 + b"}", "not JSON"),
    (b'{"schema": ' + b"9" * 50_000 + b"}", "not JSON"),
])
def test_bad_bytes_are_one_line(tmp_path, capsys, cmd, payload, phrase):
    path = tmp_path / "r.json"
    path.write_bytes(payload)
    assert phrase in _one_line_exit_2(capsys, cmd, str(path))


def _mutated(mutate) -> str:
    data = _valid()
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize("mutate,phrase", [
    (lambda d: d["results"][0].__setitem__("tier", "live"), "tier is a string, not a list"),
    (lambda d: d["results"][0].__setitem__("clause_id", 7), "clause_id is a number"),
    (lambda d: d["results"][0].__setitem__("clause_id", ["PLAN-PURE"]), "clause_id is a list"),
    (lambda d: d.__setitem__("capabilities", "live"), "capabilities is a string, not a list"),
    (lambda d: d.__setitem__("results", {"a": 1}), "results is an object"),
    (lambda d: d["results"].__setitem__(0, "PLAN-PURE"), "results[0] is a string"),
    (lambda d: d["results"][0].__setitem__("duration_s", 10 ** 400), "duration_s is not a finite"),
    (lambda d: d["results"][0].__setitem__("duration_s", True), "duration_s is a boolean"),
    (lambda d: d["results"][0].__setitem__("level", "MAY"), "level 'MAY'"),
    (lambda d: d["results"][0].__setitem__("state", 3), "state is a number"),
    (lambda d: d.__setitem__("backend", None), "backend is null"),
    (lambda d: d.__setitem__("schema", True), "unsupported report schema True"),
    (lambda d: d.__setitem__("schema", 10 ** 300), "<a very large integer>"),
    (lambda d: d.__setitem__("hypothesis_seed", 5), "hypothesis_seed is a number"),
])
def test_wrong_types_are_refused_not_coerced(mutate, phrase):
    with pytest.raises(ReportError, match=phrase.replace("[", r"\[").replace("(", r"\(")):
        Report.from_json(_mutated(mutate))


def test_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert "FIFO" in _one_line_exit_2(capsys, "verify", str(fifo))
    assert time.monotonic() - t0 < 5


def test_devices_and_directories_are_refused(tmp_path, capsys):
    assert "device" in _one_line_exit_2(capsys, "report", "/dev/zero")
    assert "directory" in _one_line_exit_2(capsys, "report", str(tmp_path))
    assert "cannot read" in _one_line_exit_2(capsys, "report", str(tmp_path / "absent.json"))


def test_oversized_file_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    import conformance.cli as cli

    path = tmp_path / "big.json"
    path.write_text(_report(_all()).to_json())
    monkeypatch.setattr(cli, "MAX_REPORT_CHARS", 100)
    monkeypatch.setattr(cli.read_report_text, "__defaults__", (100,))
    assert "limit" in _one_line_exit_2(capsys, "report", str(path))


def test_loading_is_linear_in_the_number_of_results():
    """100,000 distinct results load (and verify) in well under the time the
    quadratic ``ids.count`` took (minutes)."""
    rows = [{"clause_id": f"X-{i}", "level": "MUST", "tier": ["snapshot"], "state": "PASSED",
             "reason": "", "duration_s": 0.0} for i in range(100_000)]
    data = _valid()
    data["results"] = rows
    t0 = time.monotonic()
    report = Report.from_json(json.dumps(data))
    problems = verify(report)
    assert time.monotonic() - t0 < 10
    assert len(report.results) == 100_000 and len(problems) > 100_000 - 1


def test_duplicates_are_still_named():
    data = _valid()
    data["results"].append(dict(data["results"][0]))
    with pytest.raises(ReportError, match=f"listed twice: {data['results'][0]['clause_id']}"):
        Report.from_json(json.dumps(data))


def test_verify_tier_scopes_what_must_be_present(tmp_path, capsys):
    static = _report(_all(tiers=("snapshot", "invariant")))
    path = tmp_path / "static.json"
    path.write_text(static.to_json())
    code, out, _ = _run(capsys, "verify", str(path))
    assert code == 1 and "LIVE-SMOKE (MUST): not in the report" in out
    code, out, _ = _run(capsys, "verify", str(path), "--tier", "snapshot,invariant")
    assert code == 0 and "OK" in out and "tiers invariant+snapshot" in out
    # The scope does not excuse a failure inside it.
    bad = [r if r.clause_id != "PLAN-PURE" else ClauseResult(
        r.clause_id, r.level, r.tier, State.FAILED, "x", 0.0) for r in static.results]
    path.write_text(_report(bad).to_json())
    code, out, _ = _run(capsys, "verify", str(path), "--tier", "invariant")
    assert code == 1 and "PLAN-PURE (MUST): FAILED" in out
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(path), "--tier", "static"])
    assert exc.value.code == 2
    assert "unknown tier(s) static" in capsys.readouterr().err


def test_absent_capabilities_round_trip_and_show_in_the_header():
    report = _report(_all(), capabilities_absent=(("live", "smolvm not found on PATH"),))
    again = Report.from_json(report.to_json())
    assert again == report
    assert "- capabilities absent: live: smolvm not found on PATH" in markdown(again)


# -- fuzz ------------------------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=False), st.text(max_size=8),
)
_json = st.recursive(_json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


def _perturb(draw_value, data: dict, path: list) -> str:
    obj = data
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = draw_value
    return json.dumps(data)


_PATHS = [["schema"], ["backend"], ["capabilities"], ["results"], ["results", 0],
          ["results", 0, "tier"], ["results", 0, "clause_id"], ["results", 0, "state"],
          ["results", 0, "duration_s"], ["results", 0, "level"], ["hypothesis_seed"],
          ["capabilities_absent"]]


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=_json, path=st.sampled_from(_PATHS))
def test_fuzz_loader_gives_a_report_or_a_report_error(value, path):
    """Any JSON value at any field: either a well-typed Report or ReportError."""
    text = _perturb(value, _valid(), path)
    try:
        report = Report.from_json(text)
    except ReportError as exc:
        assert "\n" not in str(exc)
        return
    for r in report.results:
        assert isinstance(r.clause_id, str) and all(isinstance(t, str) for t in r.tier)
        assert isinstance(r.state, State)
    markdown(report)
    verify(report)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(raw=st.binary(max_size=200))
def test_fuzz_loader_on_raw_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "r.json"
    path.write_bytes(raw)
    from conformance.cli import _load

    try:
        _load(path)
    except ReportError as exc:
        assert "\n" not in str(exc)



# -- issue 17: control characters cannot forge lines -----------------------------------
import unicodedata  # noqa: E402

from conformance.report import printable  # noqa: E402

FORGE = "\nFAKE-CLAUSE (MUST): PASSED\r\x1b[2K\x1b]0;owned\x07\u2028\u202e\x85"


def _unsafe(text: str) -> list[str]:
    """Characters a terminal acts on (controls but newline, format
    characters such as bidi overrides, line and paragraph separators)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def _write(tmp_path, report: Report):
    path = tmp_path / "r.json"
    path.write_text(report.to_json(), encoding="utf-8")
    return path


@pytest.mark.parametrize("field", ["reason", "clause_id", "backend", "backend_version"])
def test_a_newline_in_a_field_cannot_forge_a_line(tmp_path, capsys, field):
    must = next(c for c in CLAUSES if c.level == "MUST")
    result = ClauseResult(must.id, "MUST", ("snapshot",), State.FAILED, reason="broken")
    if field in ("reason", "clause_id"):
        result = ClauseResult(**{**result.__dict__, field: getattr(result, field) + FORGE})
    report = _report([result], **({field: "docker" + FORGE} if field.startswith("backend")
                                  else {}))
    path = _write(tmp_path, report)
    for cmd in ("report", "verify"):
        main([cmd, str(path)])
        out, err = capsys.readouterr()
        for stream in (out, err):
            assert not any(line.startswith("FAKE-CLAUSE") for line in stream.splitlines()), stream
            assert not _unsafe(stream), (cmd, _unsafe(stream))


def test_printable_escapes_only_what_a_terminal_acts_on():
    assert printable("plain text, ünïcödé — ok") == "plain text, ünïcödé — ok"
    assert printable("a\nb\r\x1b[0m\u202e") == "a\\nb\\r\\x1b[0m\\u202e"


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(backend=_TEXT, version=_TEXT, rows=st.lists(
    st.tuples(_TEXT, st.sampled_from(["MUST", "SHOULD"]), st.sampled_from(list(State)), _TEXT),
    max_size=4, unique_by=lambda r: r[0]))
def test_fuzz_report_and_verify_print_one_line_per_item(tmp_path, capsys, backend, version,
                                                         rows):
    """Crafted but well-typed reports: report prints its header and one
    table row per clause, verify one line per problem (plus its summary),
    and nothing a terminal would act on."""
    results = [ClauseResult(cid, level, ("snapshot",), state, reason=reason)
               for cid, level, state, reason in rows]
    report = _report(results, backend=backend, backend_version=version)
    path = _write(tmp_path, report)
    assert main(["report", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert not _unsafe(out)
    assert len(out.splitlines()) == len(markdown(Report.from_json(report.to_json())).split("\n")) - 1
    assert sum(line.startswith("| ") for line in out.splitlines()) == 2 + len(results)
    code = main(["verify", str(path)])
    out, _ = capsys.readouterr()
    assert not _unsafe(out)
    problems = verify(report)
    verdicts = profile_verdicts(report)  # one "profile ..." line each, before the rest
    assert len(out.splitlines()) == len(verdicts) + (1 + len(problems) if code else 1)


# -- issue 17: contract --check --output at what cannot be a contract --------------------
def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make, phrase", [
    (_fifo, "FIFO"),
    (lambda tmp_path: "/dev/zero", "device"),
    (lambda tmp_path: (tmp_path / "latin1.md").write_bytes(b"caf\xe9\n") and tmp_path / "latin1.md",
     "not UTF-8"),
    (lambda tmp_path: tmp_path, "directory"),
])
def test_contract_check_refuses_what_cannot_be_a_contract_in_one_line(tmp_path, capsys, make,
                                                                      phrase):
    started = time.monotonic()
    assert main(["contract", "--check", "--output", str(make(tmp_path))]) == 2
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 5, "must not block on a FIFO or read /dev/zero forever"
    assert out == "" and err.count("\n") == 1 and phrase in err, err
