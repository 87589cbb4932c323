"""``bottle-conformance``: read reports and keep CONTRACT.md in sync.

    bottle-conformance run --backend NAME [--tier T,...] [--certify] [--report F] [-- PYTEST ARGS]
    bottle-conformance report PATH            markdown table of a JSON report
    bottle-conformance verify PATH [--strict] [--tier TIERS]  exit 1 listing problems
    bottle-conformance contract [--check] [--output FILE]

Exit codes: 0 fine, 1 problems / out of date / failed clauses, 2 unusable
input (``run``: otherwise pytest's own exit status).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from .contract import DEFAULT_PATH, render_contract
from .clauses import TIERS
from .report import (MAX_REPORT_CHARS, Report, ReportError, markdown, printable,
                     profile_verdicts, verify)


def read_report_text(path: Path, limit: int = MAX_REPORT_CHARS, *, what: str = "a report") -> str:
    """The text of a report file (or ``what`` else), refusing what cannot be one without
    blocking or reading without bound: a FIFO, a device (``/dev/zero``), a
    directory, a file over ``limit`` bytes, bytes that are not UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO"
                    if stat.S_ISFIFO(st.st_mode) else "a device or special file")
            raise ReportError(f"cannot read: {kind}, not a regular file")
        if st.st_size > limit:
            raise ReportError(f"not {what}: {st.st_size} bytes, over the {limit}-byte limit")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ReportError(f"not {what}: over the {limit}-byte limit")
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"not {what}: not UTF-8 (byte {exc.start})") from None


def _load(path: Path) -> Report:
    return Report.from_json(read_report_text(path))


def _cmd_report(args: argparse.Namespace) -> int:
    sys.stdout.write(markdown(_load(args.path)))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    report = _load(args.path)
    problems = verify(report, strict=args.strict, tiers=args.tier)
    for v in profile_verdicts(report, strict=args.strict, tiers=args.tier):
        print(f"profile {v.line()}")
    if problems:
        print(f"{printable(args.path)}: {len(problems)} problem(s):")
        for p in problems:
            print(f"  {printable(p)}")
        return 1
    scope = f", tiers {'+'.join(sorted(args.tier))}" if args.tier else ""
    print(f"{printable(args.path)}: OK ({printable(report.backend)} "
          f"{printable(report.backend_version)}, {len(report.results)} clauses{scope})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the shipped suite against one backend in a pytest subprocess (so
    the author's own pytest configuration and plugins apply as they would to
    ``pytest --pyargs conformance``), then print the report table and, with
    --certify, each profile's verdict."""
    import subprocess
    import tempfile

    from .capabilities import UnknownCapabilityError
    from .selection import BackendSelectionError, identify, load_backend

    try:
        identify(load_backend(args.backend))
    except (BackendSelectionError, UnknownCapabilityError) as exc:
        print(f"bottle-conformance run: {exc}", file=sys.stderr)
        return 2
    extra = list(args.pytest_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    with tempfile.TemporaryDirectory(prefix="bottle-conformance-") as tmp:
        report_path = args.report or Path(tmp) / "report.json"
        if not report_path.parent.is_dir():
            print(f"bottle-conformance run: --report {report_path}: directory "
                  f"{report_path.parent} does not exist", file=sys.stderr)
            return 2
        # --rootdir: the author's directory, not the installed package's, so
        # snapshots/<backend> and pyproject's [tool.bottle-conformance] are theirs.
        cmd = [sys.executable, "-m", "pytest", "--pyargs", "conformance",
               "--rootdir", str(Path.cwd()),
               "--bottle-backend", args.backend, "--bottle-report", str(report_path),
               *(["--bottle-tier", ",".join(sorted(args.tier))] if args.tier else []),
               *(["--bottle-certify"] if args.certify else []),
               *extra]
        print("bottle-conformance run: " + " ".join(cmd[1:]), flush=True)
        status = subprocess.call(cmd)
        if not report_path.is_file():
            print(f"bottle-conformance run: pytest exited {status} and wrote no report",
                  file=sys.stderr)
            return status or 1
        report = _load(report_path)
        sys.stdout.write("\n" + markdown(report, tiers=args.tier))
        if args.report:
            print(f"\nreport: {report_path}")
    if args.certify:
        problems = verify(report, strict=True, tiers=args.tier)
        print(f"certify: {'PASSED' if not problems else 'FAILED'}"
              + (f" (tiers {'+'.join(sorted(args.tier))} only)" if args.tier else ""))
        for p in problems:
            print(f"  {p}")
        if problems and status == 0:
            status = 1
    return status


def _cmd_contract(args: argparse.Namespace) -> int:
    path: Path = args.output
    try:
        if args.check:
            try:
                current = read_report_text(path, limit=MAX_CONTRACT_BYTES,
                                           what="a contract") == render_contract()
            except ReportError:
                if not os.path.lexists(path):
                    current = False
                else:
                    raise
            if current:
                print(f"{printable(path)} is up to date")
                return 0
            print(f"{printable(path)} is out of date with the clause registry; run "
                  "`bottle-conformance contract`")
            return 1
        _write_regular(path, render_contract())
    except ReportError as exc:
        print(f"bottle-conformance: {printable(path)}: {printable(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {printable(path)}")
    return 0


MAX_CONTRACT_BYTES = 4 * 1024 * 1024


def _write_regular(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, a regular file (created if missing); a
    FIFO (no reader: it would block), a device or a directory is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK
                     | getattr(os, "O_NOCTTY", 0), 0o644)
    except OSError as exc:
        raise ReportError(f"cannot write: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReportError("cannot write: not a regular file")
        os.ftruncate(fd, 0)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        raise ReportError(f"cannot write: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _tiers(text: str) -> frozenset[str]:
    names = frozenset(t.strip() for t in text.split(",") if t.strip())
    unknown = names - set(TIERS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown tier(s) {', '.join(sorted(unknown)) or repr(text)}; "
            f"choose from {', '.join(TIERS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bottle-conformance", description="Bottle backend conformance: reports and contract.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "run", help="run the suite against a backend (pytest underneath), print the table",
        description="Run the shipped suite (pytest --pyargs conformance) against one backend "
                    "and print the report table. Arguments after -- go to pytest.")
    p.add_argument("--backend", required=True, metavar="NAME",
                   help="entry point of the bottle.backends group, or package.module:factory")
    p.add_argument("--tier", type=_tiers, default=None, metavar="TIER[,TIER...]",
                   help="only these tiers (snapshot, invariant, live); certification then asks "
                        "only for their clauses")
    p.add_argument("--certify", action="store_true",
                   help="fail unless every MUST clause of core and of each declared profile "
                        "PASSED")
    p.add_argument("--report", type=Path, default=None, metavar="FILE",
                   help="keep the JSON report here (its directory must exist)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="after --: more pytest arguments (e.g. -x, -k EXPR, -n 2)")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("report", help="print a JSON report as a markdown table")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("verify", help="exit 1 if a report has MUST problems")
    p.add_argument("path", type=Path)
    p.add_argument("--strict", action="store_true",
                   help="also fail on MUST clauses NOT_SUPPORTED or XFAIL")
    p.add_argument("--tier", type=_tiers, default=None, metavar="TIER[,TIER...]",
                   help="require only clauses of these tiers (e.g. snapshot,invariant for a "
                        "static-only run)")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("contract", help="write (or --check) CONTRACT.md from the registry")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    p.add_argument("--output", type=Path, default=DEFAULT_PATH, help="default: ./CONTRACT.md")
    p.set_defaults(func=_cmd_contract)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ReportError as exc:
        where = getattr(args, "path", None) or getattr(args, "report", None) or "report"
        print(f"bottle-conformance: {printable(where)}: {printable(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bottle-conformance: {printable(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
