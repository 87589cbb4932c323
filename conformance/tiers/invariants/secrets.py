"""Invariant properties for SECRET-ARGV, SECRET-FILES, SECRET-PLAN."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from hypothesis import given

from bottle_api.plan import to_json

from ... import redaction
from ... import strategies as bst
from ...markers import clause
from ...recording import env_assignments, prog, record
from ...recording.tracing import TracingRunner
from .support import _LAUNCH, _PLAN, _budget, _fit, _launched, _recorded, _scratch, _show

_FILES = _budget(0.25)  # a recorded launch per example, files read at each command
from .topology import _flag_values


_QUOTES = re.compile(r"[\'\"\\\\]")
_FILE_FLAGS = ("--env-file", "--label-file", "--config", "--from-file")
_MAX_FILE = 1 << 20


def _show_redacted(known: redaction.Registry, text: str) -> str:
    """Redacted before it is cut: a cut encoding no longer matches, and a
    prefix of one still gives a prefix of the token away."""
    text = known.redact(text)
    return text if len(text) <= 600 else text[:597] + "..."


def _argv_views(argv) -> list[tuple[str, str]]:
    """The texts of one argv a token may hide in: its words; its words run
    together (a token split over words); and that without quotes and
    backslashes (a token quoted or escaped in pieces)."""
    joined = "".join(argv)
    return [("the argv words", "\0".join(argv)), ("argv words joined", joined),
            ("argv without quotes", _QUOTES.sub("", joined))]


def _named_files(argv, root: Path) -> set[Path]:
    """Host files ``argv`` hands to a child: ``--env-file X`` (and the like),
    the host side of ``-v SRC:DST`` / ``--mount src=...``, ``cp SRC ...``, and
    any absolute-path word naming a file under the scratch ``root``."""
    out: set[Path] = set()
    for i, word in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        cands = []
        if word in _FILE_FLAGS:
            cands.append(nxt)
        for flag in _FILE_FLAGS:
            if word.startswith(flag + "="):
                cands.append(word.split("=", 1)[1])
        if word in ("-v", "--volume"):
            cands.append(nxt.split(":", 1)[0])
        if word.startswith("--mount") or (i and argv[i - 1] == "--mount"):
            for part in word.split(","):
                if part.startswith(("src=", "source=")):
                    cands.append(part.split("=", 1)[1])
        if word.startswith("/"):
            cands.append(word.split(":", 1)[0])
        for c in cands:
            if not c:
                continue
            path = Path(c)
            try:
                if path.is_file() and (word in _FILE_FLAGS or any(
                        word.startswith(f + "=") for f in _FILE_FLAGS)
                        or root in path.resolve().parents):
                    out.add(path)
            except OSError:
                continue
    return out


@contextlib.contextmanager
def _files_at_each_command(root: Path) -> Iterator[dict[str, set[str]]]:
    """While active, every command a recorded launch runs first snapshots
    the host files it may read: those its argv names (`_named_files`) and
    every file under the scratch ``root`` (state dir, env files, configs:
    what the backend wrote so far). Yields path -> texts seen."""
    seen: dict[str, set[str]] = {}
    original = TracingRunner.run

    def read(path: Path) -> None:
        try:
            if path.is_file() and path.stat().st_size <= _MAX_FILE:
                seen.setdefault(str(path), set()).add(
                    path.read_bytes().decode("utf-8", "replace"))
        except OSError:
            pass

    def run(self, argv, **kw):
        words = [str(a) for a in argv]
        for path in _named_files(words, root):
            read(path)
        for dirpath, _, names in os.walk(root):
            for name in names:
                read(Path(dirpath) / name)
        return original(self, argv, **kw)

    TracingRunner.run = run
    try:
        yield seen
    finally:
        TracingRunner.run = original


class SecretInvariants:
    """SECRET-ARGV, SECRET-FILES, SECRET-PLAN."""

    @clause("SECRET-FILES")
    @_FILES
    @given(case=bst.bottle_cases(max_routes=3, max_upstreams=1))
    def test_no_token_value_in_files_a_command_reads(self, backend, case):
        """Env files, configs and anything else on the host a launch's
        commands are handed (or that sits in the bottle's state dir) hold
        no token value, literally or encoded."""
        case = _fit(backend, case)
        spec, host = case
        secrets = set(bst.secret_values(spec, host))
        with _scratch() as tmp:
            root = Path(tmp)
            mspec, mhost = bst.materialise(spec, host, root)
            with _files_at_each_command(root) as seen:
                rec = record(backend, (mspec, mhost), tmp=root)
            _launched(rec)
            secrets |= {v for v in rec.plan.secrets.values() if v}
            known = redaction.Registry()
            known.plant(*secrets)
            for path, texts in sorted(seen.items()):
                for text in texts:
                    kinds = known.kinds(text)
                    assert not kinds, (
                        f"{rec.normalise(path)} holds a token value ({kinds[0]}); a launch "
                        "command reads it (an env file, a config, a mounted file), but a token "
                        "must reach a child only through the runner's env")

    # -- SECRET-ARGV / SECRET-PLAN -------------------------------------------------------

    @clause("SECRET-ARGV")
    @_LAUNCH
    @given(case=bst.bottle_cases())
    def test_no_token_value_on_any_argv(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        secrets = set(bst.secret_values(spec, host))
        with _recorded(backend, case) as rec:
            _launched(rec)
            plan = rec.plan
            secrets |= {v for v in plan.secrets.values() if v}
            slots = set(plan.secrets)
            known = redaction.Registry()
            known.plant(*secrets)
            for argv in rec.all_argvs():
                for view, text in _argv_views(argv):
                    kinds = known.kinds(text)
                    assert not kinds, (
                        f"a token value is on argv ({kinds[0]}, seen in {view}): "
                        f"{_show_redacted(known, rec.normalise(shlex.join(argv)))}")
            for call in rec.runner.calls:
                if call.kind != "run":
                    continue
                argv = call.argv
                for name, value in env_assignments(argv):
                    assert name not in slots, (
                        f"token slot {name} is given a value on argv (-e {name}=...), not bare "
                        f"-e {name}: {rec.normalise(_show(argv))}")
                if call.env_names and (prog(argv) in ("docker", "podman", "nerdctl", "smolvm")):
                    named = set(_flag_values(argv, "-e", "--env"))
                    for name in call.env_names:
                        assert name in named, (
                            f"{name} travels in the runner's env but is not named bare "
                            f"(-e {name}) on argv: {rec.normalise(_show(argv))}")
            undelivered = {v for v in plan.secrets.values() if v} - set(rec.runner.secret_values)
            assert not undelivered, (
                f"{len(undelivered)} token(s) of plan.secrets never reached a child through the "
                "runner's env=")

    @clause("SECRET-PLAN")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_repr_and_json_hold_no_secret(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        secrets = set(bst.secret_values(spec, host)) | {v for v in plan.secrets.values() if v}
        for what, text in (("repr(plan)", repr(plan)), ("str(plan)", str(plan)),
                           ("to_json(plan)", to_json(plan))):
            leaked = [s for s in secrets if s in text]
            assert not leaked, (
                f"{what} contains {len(leaked)} secret value(s), e.g. one starting "
                f"{leaked[0][:6]!r}")
