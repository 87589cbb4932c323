"""``bottle-ref``: validate, plan, bring up, exec into, list and tear down bottles.

Expected failures (bad spec, unknown backend or bottle, a failing command, a
provisioning error, a timeout, a file error) print ONE line
``bottle-ref: error: ...`` and exit 2 for bad input or 1 for runtime
failures; only a bug shows a traceback.

``up`` records ``{name, backend, spec, spec_text, base_dir, handle}`` in
``<state_root>/bottles/<name>.json`` so that ``exec`` and ``down`` (later
processes) can re-prepare the same plan and `Backend.attach` to the bottle.
The spec text is kept so an edited or moved spec file cannot make ``down``
tear down something other than what ``up`` launched. No secret is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bottle_api.registry import BackendNotFound, get_backend
from bottle_api.backend import Backend, Bottle
from bottle_api.host import HostContext
from bottle_api.plan import Plan, to_json
from bottle_api.runner import SubprocessRunner
from bottle_api.spec import NAME_RE, BottleSpec, SpecError, load_spec, parse_spec

PROG = "bottle-ref"
EXIT_OK, EXIT_RUNTIME, EXIT_INPUT = 0, 1, 2
BACKEND_ENV = "BOTTLE_BACKEND"
DEFAULT_BACKEND = "docker"
STATE_VERSION = 1
# Secret values shorter than this are not scanned for in output: a 3-letter
# "token" would match innocent text. Real tokens are far longer.
MIN_SECRET_LEN = 8


class InputError(Exception):
    """Bad input that is not a spec error (e.g. unknown bottle name): exit 2."""


class RuntimeFailure(Exception):
    """A runtime failure the CLI detected itself (e.g. bottle already up): exit 1."""


# -- helpers -------------------------------------------------------------------
def _err(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _progress(step: str) -> None:
    print(f"==> {step}", file=sys.stderr, flush=True)


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _default_backend() -> str:
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def _runner(args: argparse.Namespace) -> SubprocessRunner:
    return SubprocessRunner(echo=_echo if getattr(args, "verbose", False) else None)


def _registry(host: HostContext) -> Path:
    return host.state_root / "bottles"


def _state_file(host: HostContext, name: str) -> Path:
    return _registry(host) / f"{name}.json"


def _secret_values(plan: Plan, spec: BottleSpec, host: HostContext) -> set[str]:
    """Every token value the host holds for this bottle (plan.secrets and the
    routes' token_env variables), long enough to search for safely."""
    values = set(plan.secrets.values())
    values.update(host.env.get(r.token_env, "") for r in spec.routes)
    return {v for v in values if v and len(v) >= MIN_SECRET_LEN}


def _leaks(text: str, secrets: Iterable[str]) -> bool:
    return any(s in text for s in secrets)


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # killed by signal N


def _load_with_text(path: str) -> tuple[BottleSpec, str]:
    """The spec and the exact text it was parsed from (kept in the state file)."""
    load_spec(path)  # size, encoding, readability: one-line SpecErrors
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise SpecError(f"cannot read spec: {exc}", file=str(path)) from None
    return parse_spec(text, source=str(path), base_dir=Path(path).absolute().parent), text


# -- state ---------------------------------------------------------------------
def _write_state(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _reserve(path: Path, name: str, backend: str, spec: Path) -> None:
    """Claim ``name`` atomically before anything starts: two concurrent
    `up`s of one spec would otherwise share a state dir and leak a bottle."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RuntimeFailure(f"bottle {name} is already up (state: {path}); "
                             f"run `{PROG} down {name}` first") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"name": name, "backend": backend, "spec": str(spec), "starting": True}, f)


def _read_state(host: HostContext, name: str) -> tuple[Path, dict]:
    path = _state_file(host, name)
    if not NAME_RE.fullmatch(name) or not path.is_file():
        raise InputError(f"no bottle named {name} (see `{PROG} ls`)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeFailure(f"state file {path} is corrupt ({exc}); remove it by hand "
                             "after checking nothing of the bottle still runs") from None
    if isinstance(state, dict) and state.get("starting"):
        raise InputError(f"bottle {name} is still starting; if no `{PROG} up` is running, "
                         f"its launch died: check the engine, then remove {path}")
    if not isinstance(state, dict) or not {"backend", "spec", "handle"} <= state.keys():
        raise RuntimeFailure(f"state file {path} is not a bottle-ref state file")
    return path, state


def _reattach(state: dict, host: HostContext, args: argparse.Namespace,
              path: Path) -> Bottle:
    """Re-prepare the plan ``up`` launched and attach to the running bottle."""
    if "spec_text" in state:
        spec = parse_spec(state["spec_text"], source=state["spec"],
                          base_dir=Path(state.get("base_dir") or Path(state["spec"]).parent))
    else:
        spec = load_spec(state["spec"])
    if spec.name != state.get("name", spec.name):
        raise RuntimeFailure(f"state file {path} names bottle {state['name']!r} but its spec "
                             f"names {spec.name!r}")
    backend = get_backend(state["backend"])
    if state["handle"] is None:
        raise RuntimeFailure(f"backend {state['backend']!r} gave no handle at launch, so "
                             f"{PROG} cannot reach this bottle; state file: {path}")
    plan = backend.prepare(spec, host)
    try:
        return backend.attach(plan, _runner(args), state["handle"])
    except NotImplementedError:
        raise RuntimeFailure(f"backend {state['backend']!r} cannot attach to a running "
                             "bottle (Backend.attach is not implemented)") from None


# -- commands ------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    print(f"ok: {spec.name}")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    backend_name = args.backend or _default_backend()
    backend = get_backend(backend_name)
    host = HostContext.from_os()
    plan = backend.prepare(spec, host)
    text = to_json(plan)
    # to_json redacts plan.secrets; a backend that copied a token elsewhere
    # in its plan must not get it printed.
    if _leaks(text, _secret_values(plan, spec, host)):
        raise RuntimeFailure(f"refusing to print the plan: backend {backend_name!r} put a "
                             "token value outside plan.secrets")
    print(text)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    spec_path = Path(args.spec).absolute()
    spec, spec_text = _load_with_text(args.spec)
    backend_name = args.backend or _default_backend()
    backend: Backend = get_backend(backend_name)
    host = HostContext.from_os()
    state_path = _state_file(host, spec.name)
    _reserve(state_path, spec.name, backend_name, spec_path)
    try:
        plan = backend.prepare(spec, host)
        bottle = backend.launch(plan, _runner(args), progress=_progress)
    except BaseException:
        state_path.unlink(missing_ok=True)  # launch cleaned itself up
        raise
    try:
        try:
            handle = bottle.handle()
        except NotImplementedError:
            handle = None
            _echo(f"{PROG}: warning: backend {backend_name!r} gives no handle; "
                  "exec and down will not reach this bottle")
        state = {"version": STATE_VERSION, "name": spec.name, "backend": backend_name,
                 "spec": str(spec_path), "base_dir": str(spec_path.parent),
                 "spec_text": spec_text, "handle": handle}
        try:
            text = json.dumps(state, indent=2, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise RuntimeFailure(f"backend {backend_name!r} returned a handle that is "
                                 f"not JSON ({exc})") from None
        if handle is not None and _leaks(json.dumps(handle), _secret_values(plan, spec, host)):
            raise RuntimeFailure(f"backend {backend_name!r} put a token value in its handle; "
                                 "refusing to store it")
        _write_state(state_path, text)
    except BaseException:
        # Unreachable once we return: take it down rather than leak it.
        try:
            bottle.close()
        except Exception as exc:  # keep the original error; mention this one
            _echo(f"{PROG}: warning: teardown after failure also failed: {exc}")
        state_path.unlink(missing_ok=True)
        raise
    print(spec.name)
    return EXIT_OK


def cmd_exec(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not args.agent and not cmd:
        raise InputError(f"exec needs a command: {PROG} exec {args.name} -- CMD...")
    host = HostContext.from_os()
    path, state = _read_state(host, args.name)
    bottle = _reattach(state, host, args, path)
    if args.agent:
        # Interactive: the agent owns the terminal, nothing is captured.
        argv = bottle.agent_argv(cmd, tty=sys.stdin.isatty())
        return _exit_status(subprocess.run(argv, check=False).returncode)
    result = bottle.exec(cmd)
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    sys.stderr.flush()
    return _exit_status(result.returncode)


def cmd_down(args: argparse.Namespace) -> int:
    host = HostContext.from_os()
    path, state = _read_state(host, args.name)
    bottle = _reattach(state, host, args, path)
    bottle.close()
    path.unlink(missing_ok=True)
    print(args.name)
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    registry = _registry(HostContext.from_os())
    files = sorted(registry.glob("*.json")) if registry.is_dir() else []
    for f in files:
        try:
            state = json.loads(f.read_text(encoding="utf-8"))
            backend, spec = state["backend"], state["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            backend, spec = "?", f"(unreadable state file {f})"
        print(f"{f.stem}\t{backend}\t{spec}")
    return EXIT_OK


# -- parser and entry point ----------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run coding agents in bottles (reference implementation).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backend_help = f"backend entry-point name or pkg.mod:factory (default: ${BACKEND_ENV} or {DEFAULT_BACKEND})"

    p = sub.add_parser("validate", help="check a spec file")
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="print the plan a backend would launch (secrets redacted)")
    p.add_argument("--backend", metavar="NAME", help=backend_help)
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("up", help="launch a bottle; prints its name")
    p.add_argument("--backend", metavar="NAME", help=backend_help)
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("exec", help="run a command (or, with --agent, the agent) in a bottle",
                       usage=f"{PROG} exec [--agent] [-v] NAME -- CMD...")
    p.add_argument("--agent", action="store_true",
                   help="run the agent interactively with the given arguments")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("name", metavar="NAME")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("down", help="tear a bottle down")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("ls", help="list bottles this host brought up")
    p.set_defaults(func=cmd_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error or --help: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        return args.func(args)
    except (SpecError, BackendNotFound, InputError) as exc:
        _err(exc)
        return EXIT_INPUT
    except ValueError as exc:
        # Host settings a backend rejects (e.g. BOTTLE_SMOL_CPUS=abc) are
        # bad input too; SpecError above is the spec's own kind.
        _err(exc)
        return EXIT_INPUT
    except (RuntimeFailure, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        # RuntimeError covers CommandError, ProvisionError and NotImplementedError;
        # OSError covers TimeoutError and file errors.
        _err(str(exc) or type(exc).__name__)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
