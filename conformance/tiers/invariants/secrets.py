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
        mounted = set()
        if word in ("-v", "--volume"):
            mounted.add(nxt.split(":", 1)[0])
        if word.startswith("--mount") or (i and argv[i - 1] == "--mount"):
            mounted |= {p.split("=", 1)[1] for p in word.split(",")
                        if p.startswith(("src=", "source="))}
        for c in cands:
            if not c:
                continue
            path = Path(c)
            try:
                if path.is_file() and (word in _FILE_FLAGS or any(
                        word.startswith(f + "=") for f in _FILE_FLAGS)
                        or c in mounted or root in path.resolve().parents):
                    # A file mounted into a container is handed to it
                    # wherever on the host it lives.
                    out.add(path)
                elif c in mounted and path.is_dir() and path.is_absolute():
                    out |= _files_under(path)
            except OSError:
                continue
    return out


def _files_under(top: Path, limit: int = 200) -> set[Path]:
    """Up to ``limit`` regular files under a mounted host directory."""
    out: set[Path] = set()
    for dirpath, _, names in os.walk(top):
        for name in names:
            out.add(Path(dirpath) / name)
            if len(out) >= limit:
                return out
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
            # The real token VALUES are the ones the suite planted in the
            # HostContext, never whatever the plan maps: a plan keyed by
            # value would otherwise make slot names count as tokens.
            slots = {k for k in plan.secrets if k not in secrets}
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
            routed = {host.env[r.token_env] for r in spec.routes if host.env.get(r.token_env)}
            undelivered = routed - set(rec.runner.secret_values)
            assert not undelivered, (
                f"{len(undelivered)} route token(s) of the host never reached a child through "
                "the runner's env=")

    @clause("SECRET-PLAN")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_repr_and_json_hold_no_secret(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        secrets = set(bst.secret_values(spec, host))
        for what, text in (("repr(plan)", repr(plan)), ("str(plan)", str(plan)),
                           ("to_json(plan)", to_json(plan))):
            leaked = [s for s in secrets if s in text]
            assert not leaked, (
                f"{what} contains {len(leaked)} secret value(s), e.g. one starting "
                f"{leaked[0][:6]!r}")

    # -- SECRET-STDIN / SECRET-ERRORS (issue 16) -------------------------------------------

    @clause("SECRET-STDIN")
    @_FILES
    @given(case=bst.bottle_cases(max_routes=3, max_upstreams=1))
    def test_no_token_value_on_any_stdin(self, backend, case):
        """No command is handed a token on its standard input (the recording
        would show ``<SECRET>`` there)."""
        case = _fit(backend, case)
        spec, host = case
        known = redaction.Registry()
        known.plant(*bst.secret_values(spec, host))
        with _recorded(backend, case) as rec:
            _launched(rec)
            for call in rec.runner.calls:
                if call.kind != "run" or not call.input:
                    continue
                data = call.input
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
                kinds = known.kinds(text)
                assert not kinds, (
                    f"a token value ({kinds[0]}) is piped into the standard input of "
                    f"{rec.normalise(_show(call.argv))}; a token must reach a child only "
                    "through the runner's env")

    @clause("SECRET-ERRORS")
    @_FILES
    @given(case=bst.bottle_cases(routed=True, missing_tokens=True, credentials=None,
                                 skills=False, cwd=False, max_upstreams=1))
    def test_refusal_holds_no_token(self, backend, case):
        """The missing-token refusal names what is missing, never the value
        of a token that is set."""
        case = _fit(backend, case)
        spec, host = case
        known = redaction.Registry()
        known.plant(*bst.secret_values(spec, host))
        with _recorded(backend, case) as rec:
            _error_holds_no_token(rec, known, "the refusal of a launch with a missing token")

    @clause("SECRET-ERRORS")
    @_FILES
    @given(case=bst.bottle_cases(routed=True, max_routes=3, max_upstreams=1))
    def test_failed_launch_error_holds_no_token(self, backend, case):
        """A launch whose token-carrying command fails raises an error that
        holds no token (no daemon env in the message, args or causes)."""
        case = _fit(backend, case)
        spec, host = case
        known = redaction.Registry()
        known.plant(*bst.secret_values(spec, host))
        with _scratch() as tmp:
            root = Path(tmp)
            mspec, mhost = bst.materialise(spec, host, root)
            rec = record(backend, (mspec, mhost), tmp=root, script=_fail_token_commands)
            if not rec.runner.secret_values:
                return  # no command carried a token: nothing failed with one
            assert rec.error is not None, (
                "every command handed a token failed, yet launch succeeded")
            _error_holds_no_token(rec, known, "a launch whose token-carrying command failed")


def _fail_token_commands(runner, plan) -> None:
    """Make every command the runner is handed a token for (``env=``) fail,
    as a daemon that does not start would."""
    from bottle_api.runner import CommandError, Completed

    inner = runner.run

    def run(argv, *, env=None, input=None, timeout=None, check=True, purpose=None):
        result = inner(argv, env=env, input=input, timeout=timeout, check=False,
                       purpose=purpose)
        if env and any(env.values()):
            result = Completed(result.argv, 1, "", "scripted failure: the daemon did not start")
            if check:
                raise CommandError(result)
        elif check and not result.ok:
            raise CommandError(result)
        return result

    runner.run = run


def _exception_texts(exc: BaseException) -> list[str]:
    """The message, repr, args and notes of ``exc`` and of every exception
    chained to it (cause and context)."""
    out, seen, todo = [], set(), [exc]
    while todo and len(seen) < 16:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e), *(repr(a) for a in getattr(e, "args", ())),
                *(str(n) for n in getattr(e, "__notes__", ()))]
        todo += [e.__cause__, e.__context__]
    return out


def _error_holds_no_token(rec, known: redaction.Registry, what: str) -> None:
    if rec.error is None:
        return
    for text in _exception_texts(rec.error):
        kinds = known.kinds(text)
        assert not kinds, (
            f"{what} raised {type(rec.error).__name__} holding a token value ({kinds[0]}): "
            f"{_show_redacted(known, text)}")
