"""`parse_any` parses a smolvm argv once per distinct grammar shape and
remembers each answer; it must answer exactly as parsing under every
supported version, one by one, without any memo, does."""

from __future__ import annotations

import pytest

from conformance.argv import ArgvError, UnknownTool, framing, smolvm
from conformance.argv.grammar import Invocation

# Recorded shapes of the argvs smolmachines runs, and the flags that arrived
# in later versions (test_argv.test_smolvm_versions_differ_where_the_source_does).
BASE = [
    ["smolvm", "machine", "create", "-n", "m", "--from", "x.smolmachine", "--net", "--", "sleep", "1"],
    ["smolvm", "machine", "exec", "-n", "m", "-e", "HOME=/home/node", "--", "runuser", "-u", "node",
     "--", "claude"],
    ["smolvm", "machine", "cp", "f", "m:/f"],
    ["smolvm", "machine", "stop", "-n", "m"],
    ["smolvm", "machine", "delete", "-n", "m", "-f"],
    ["smolvm", "pack", "create", "-o", "out", "img"],
    ["smolvm", "--version"],
    ["smolvm"],
    ["smolvm", "machine", "nope"],
    ["docker", "run", "--rm", "-p", "127.0.0.1:1:2", "img"],
    ["docker", "run", "--no-such-flag", "img"],
    ["sudo", "smolvm", "machine", "stop"],
    [],
]


def _variants() -> list[list[str]]:
    """Every base argv, and each smolvm one with every flag any supported
    version knows for its command inserted after the command path (with a
    value where it takes one, and once without its value)."""
    out = [list(a) for a in BASE]
    for argv in BASE:
        if argv[:1] != ["smolvm"] or len(argv) < 3:
            continue
        path = tuple(argv[1:3])
        flags = {}
        for version in smolvm.SUPPORTED:
            cmd = smolvm.GRAMMARS[version].commands.get(path)
            for f in cmd.flags if cmd else ():
                flags[f.long] = f
        for f in flags.values():
            spelled = [f"--{f.long}"] + (["1"] if f.takes_value else [])
            out.append(argv[:3] + spelled + argv[3:])
            if f.takes_value:
                out.append(argv[:3] + [f"--{f.long}"])
    return out


def _version_by_version(argv: list[str]):
    """The loop `parse_any` replaced: every supported version, newest first,
    through the uncached parser."""
    if framing.prog(argv) != smolvm.TOOL:
        try:
            return framing.parse(argv), ()
        except ArgvError as exc:
            return type(exc), str(exc)
    ok, first, error = [], None, None
    for version in reversed(smolvm.SUPPORTED):
        try:
            inv = smolvm.GRAMMARS[version]._parse(tuple(argv))
        except ArgvError as exc:
            error = error or exc
            continue
        ok.append(version)
        first = first or inv
    if first is None:
        return type(error), str(error)
    return first, tuple(reversed(ok))


def _answer(argv: list[str]):
    try:
        return framing.parse_any(argv)
    except ArgvError as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("argv", _variants(), ids=lambda a: " ".join(a)[:60] or "(empty)")
def test_parse_any_answers_as_every_version_one_by_one(argv):
    expected = _version_by_version(argv)
    framing._ANY_MEMO.clear()
    assert _answer(argv) == expected  # parsed
    assert _answer(argv) == expected  # remembered


def test_the_variants_reach_every_verdict():
    """The table above is not all-accept: some argvs are refused by every
    version, some by some versions only."""
    answers = [_version_by_version(a) for a in _variants()]
    partial = [a for a in answers if isinstance(a[0], Invocation) and a[1]
               and a[1] != smolvm.SUPPORTED]
    refused = [a for a in answers if not isinstance(a[0], Invocation)]
    assert partial and refused and UnknownTool in {a[0] for a in refused}


def test_a_remembered_refusal_is_raised_anew():
    framing._ANY_MEMO.clear()
    errors = []
    for _ in range(2):
        with pytest.raises(ArgvError) as info:
            framing.parse_any(["smolvm", "machine", "nope"])
        errors.append(info.value)
    assert errors[0] is not errors[1] and str(errors[0]) == str(errors[1])


def test_shapes_group_only_identical_grammars():
    groups = framing._smolvm_shapes()
    assert sorted(v for g in groups for v in g) == sorted(smolvm.SUPPORTED)
    for group in groups:
        assert list(group) == sorted(group, key=smolvm.SUPPORTED.index, reverse=True)
        shapes = {smolvm.GRAMMARS[v].parse_shape for v in group}
        assert len(shapes) == 1
    assert len({smolvm.GRAMMARS[g[0]].parse_shape for g in groups}) == len(groups)
