"""Rendered config files as YAML text: one dumper, one set of options.

libyaml's C dumper writes the same bytes as the pure-Python one for this
data and is several times faster; the invariant tier renders thousands of
plans, so it is used wherever PyYAML was built with it.

The remaining cost is PyYAML's Python representer, node by node. A
top-level mapping is therefore written entry by entry, each entry's text
cached by value: most of a pipelock.yaml (its DLP patterns, proxy
settings) is the same in every plan, and the invariant tier renders the
same route and host lists again and again. In block style every top-level
entry starts in the same emitter state (a simple key at indent 0), so an
entry's text does not depend on its neighbours and the concatenation is the
whole document, byte for byte (tests/unit/test_yamltext.py checks it against
the one-piece dump). Where that might not hold the one-piece dump is used:
data that is not a non-empty dict of plain types (str, int, float, bool,
None, dict, list), and a dict or list reached twice (PyYAML writes an anchor
and an alias, numbered across the document).
"""

from __future__ import annotations

from typing import Any

import yaml

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SCALARS = (str, int, bool, type(None))
_ENTRIES: dict[Any, str] = {}  # frozen (key, value) -> that entry's text
_MAX_ENTRIES = 4096  # a bound, not a tuning knob: cleared whole when reached


class _Unfit(Exception):
    """Data the entry-by-entry path does not take (see the module doc)."""


def _whole(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


def _freeze(value: Any, seen: set[int]) -> Any:
    """A hashable twin of ``value`` that tells apart what YAML writes
    differently (1, 1.0, True; 0.0 and -0.0 by their repr)."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is float:
        return kind, repr(value)
    if kind is dict or kind is list:
        if id(value) in seen:
            raise _Unfit
        seen.add(id(value))
        if kind is list:
            return list, tuple(_freeze(v, seen) for v in value)
        return dict, tuple((_freeze(k, seen), _freeze(v, seen)) for k, v in value.items())
    raise _Unfit


def dump(data: Any) -> str:
    """Block-style YAML, keys in insertion order, unicode kept, no wrapping."""
    if type(data) is not dict or not data:
        return _whole(data)
    seen: set[int] = {id(data)}
    try:
        keys = [(_freeze(k, seen), _freeze(v, seen)) for k, v in data.items()]
    except _Unfit:
        return _whole(data)
    if len(_ENTRIES) > _MAX_ENTRIES:
        _ENTRIES.clear()
    out = []
    for key, (k, v) in zip(keys, data.items()):
        text = _ENTRIES.get(key)
        if text is None:
            text = _ENTRIES[key] = _whole({k: v})
        out.append(text)
    return "".join(out)
