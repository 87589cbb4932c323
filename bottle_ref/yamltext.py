"""Rendered config files as YAML text: one dumper, one set of options.

libyaml's C dumper writes the same bytes as the pure-Python one for this
data and is several times faster; the invariant tier renders thousands of
plans, so it is used wherever PyYAML was built with it.
"""

from __future__ import annotations

from typing import Any

import yaml

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> str:
    """Block-style YAML, keys in insertion order, unicode kept, no wrapping."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)
