"""``bottle-conformance``: read reports and keep CONTRACT.md in sync.

    bottle-conformance report PATH            markdown table of a JSON report
    bottle-conformance verify PATH [--strict] exit 1 listing problems
    bottle-conformance contract [--check] [--output FILE]

Exit codes: 0 fine, 1 problems / out of date, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .contract import DEFAULT_PATH, is_current, render_contract
from .report import Report, ReportError, markdown, verify


def _load(path: Path) -> Report:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror or exc}") from None
    return Report.from_json(text)


def _cmd_report(args: argparse.Namespace) -> int:
    sys.stdout.write(markdown(_load(args.path)))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    report = _load(args.path)
    problems = verify(report, strict=args.strict)
    if problems:
        print(f"{args.path}: {len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"{args.path}: OK ({report.backend} {report.backend_version}, "
          f"{len(report.results)} clauses)")
    return 0


def _cmd_contract(args: argparse.Namespace) -> int:
    path: Path = args.output
    if args.check:
        if is_current(path):
            print(f"{path} is up to date")
            return 0
        print(f"{path} is out of date with the clause registry; run `bottle-conformance contract`")
        return 1
    path.write_text(render_contract(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bottle-conformance", description="Bottle backend conformance: reports and contract.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="print a JSON report as a markdown table")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("verify", help="exit 1 if a report has MUST problems")
    p.add_argument("path", type=Path)
    p.add_argument("--strict", action="store_true",
                   help="also fail on MUST clauses NOT_SUPPORTED or XFAIL")
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
        print(f"bottle-conformance: {args.path}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bottle-conformance: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
