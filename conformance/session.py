"""The controller side of a run: collect clause results, then at session end
write the report, apply certification and print the summary.

Registered by the plugin only on the controller (or the only process when
not using pytest-xdist); workers ship their reports here.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from .version import __version__
from . import redaction
from .clauses import CLAUSES
from .report import Report, printable, profile_verdicts, verify
from .results import ResultCollector, build_reports, summary_line


class RunSession:
    PLUGIN_NAME = "bottle-conformance-session"

    def __init__(self, config: pytest.Config, state) -> None:
        self.config = config
        self.state = state
        self.collector = ResultCollector()
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.reports: list[Report] = []
        self.written: list[Path] = []
        self.certify_problems: list[str] = []
        self.write_error = ""

    @property
    def tiers(self) -> frozenset[str] | None:
        """The tiers --bottle-tier chose (certification then asks only for
        their clauses, as `verify --tier` does), or None for all."""
        raw = self.config.getoption("bottle_tier", None)
        if not raw:
            return None
        return frozenset(t.strip() for chunk in raw for t in chunk.split(",") if t.strip())

    @property
    def active(self) -> bool:
        # Asking for a certificate or a report makes the run count even when
        # no clause test ran: that is exactly what certify must fail.
        settings = self.state.settings
        return (self.state.selected is not None or self.collector.seen
                or bool(settings.certify) or settings.report is not None)

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        ident = self.state.identity
        if ident is None:
            return None
        caps = ", ".join(sorted(ident.capabilities)) or "none"
        lines = [
            f"bottle-conformance {__version__}: backend {ident.name} {ident.version} "
            f"(capabilities: {caps}; hypothesis profile: "
            f"{self.state.settings.effective_profile})"
        ]
        if ident.broken:
            lines.append(f"bottle-conformance: backend unusable, its clause tests are ERROR: "
                         f"{ident.broken}")
        # The backend's own strings (name, version, an error) may hold a host
        # secret or control characters: neither reaches the terminal.
        return [printable(redaction.redact(line)) for line in lines]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.active:
            return
        settings = self.state.settings
        seed = self.config.getoption("hypothesis_seed", None)
        self.reports = build_reports(
            self.collector,
            selected=self.state.identity,
            suite_version=__version__,
            hypothesis_profile=settings.effective_profile,
            hypothesis_seed=None if seed is None else str(seed),
            started_at=self.started_at,
        )
        self.reports = [redact_report(r) for r in self.reports]
        if settings.report is not None:
            try:
                self.written = write_reports(settings.report, self.reports)
            except OSError as exc:
                self.write_error = (f"bottle-conformance: cannot write the report "
                                    f"{exc.filename or settings.report}: "
                                    f"{exc.strerror or exc}")
                if session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if settings.certify:
            tiers = self.tiers
            self.certify_problems = [
                f"{r.backend}: {p}" if len(self.reports) > 1 else p
                for r in self.reports for p in verify(r, strict=True, tiers=tiers)
            ]
            if not self.reports:
                self.certify_problems.append("no clause test ran")
            if self.certify_problems and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED,
            ):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int,
                                config: pytest.Config) -> None:
        if not self.active:
            return
        tr = terminalreporter
        tr.write_sep("-", "bottle-conformance")
        for report in self.reports:
            tr.write_line(summary_line(report, CLAUSES))
            if self.state.settings.certify:
                for v in profile_verdicts(report, tiers=self.tiers):
                    tr.write_line(f"  profile {v.line()}")
        for path in self.written:
            tr.write_line(f"report written to {path}")
        if self.write_error:
            tr.write_line(self.write_error, red=True, bold=True)
        if self.state.settings.certify:
            if self.certify_problems:
                tr.write_line(
                    f"bottle-conformance certify: FAILED: {len(self.certify_problems)} "
                    "MUST clause problem(s):",
                    red=True, bold=True,
                )
                for problem in self.certify_problems:
                    tr.write_line(f"  {problem}", red=True)
            else:
                scope = (f"; tiers {'+'.join(sorted(self.tiers))} only" if self.tiers else "")
                tr.write_line("bottle-conformance certify: PASSED (every MUST clause of core and "
                              f"of each declared profile passed{scope})", green=True, bold=True)


def redact_report(report: Report) -> Report:
    """``report`` with any known secret removed from every string it holds
    (reasons were redacted where the tests ran; this covers what only this
    process knows, values planted by earlier tests, and the backend's own
    name, version, absent-capability reasons and stand-ins)."""
    def clean(value):
        if isinstance(value, str):
            return redaction.redact(value) if redaction.find(value) else value
        if isinstance(value, tuple):
            return tuple(clean(v) for v in value)
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        return value

    results = tuple(replace(r, reason=clean(r.reason), clause_id=clean(r.clause_id))
                    for r in report.results)
    return replace(report, results=results, backend=clean(report.backend),
                   backend_version=clean(report.backend_version),
                   capabilities=clean(report.capabilities),
                   capabilities_absent=clean(report.capabilities_absent),
                   standins=clean(report.standins), started_at=clean(report.started_at))


def write_reports(path: Path, reports: list[Report]) -> list[Path]:
    """Write ``reports``: one to ``path``; several (one session exercised
    several backends) to ``<stem>-<backend><suffix>`` beside it."""
    if len(reports) == 1:
        targets = [path]
    else:
        targets = [path.with_name(f"{path.stem}-{r.backend}{path.suffix}") for r in reports]
    for target, report in zip(targets, reports):
        _write_atomically(target, report.to_json())
    return targets


def _write_atomically(target: Path, text: str) -> None:
    """Write beside ``target`` and rename: a full disk leaves the old file
    (or none), never a truncated report. The directory is not created."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
