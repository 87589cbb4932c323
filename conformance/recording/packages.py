"""Which code is the backend's: its own top-level package, and the
third-party packages that package's modules use (e.g. a backend reusing
another project's helpers). No package is special-cased by name.

Used to patch ``time.sleep`` and process entry points where the backend's
code looks them up, and to normalise the backend's install path out of
snapshots (``<BACKEND_PKG>``; a helper package's as ``<PKG:name>``).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

# Never the backend's code: the suite, its test machinery, the seam.
_NOT_BACKEND = frozenset({"conformance", "bottle_api", "pytest", "_pytest", "pluggy",
                          "hypothesis", "syrupy", "builtins", "__main__"})


def _top(name: str | None) -> str:
    return (name or "").split(".")[0]


def own_package(backend: Any) -> str:
    """The top-level package name the backend's class lives in."""
    return _top(type(backend).__module__)


def _is_library(top: str) -> bool:
    return (not top or top in _NOT_BACKEND or top in sys.stdlib_module_names
            or top.startswith("_"))


# One scan per state of the interpreter, not per recorded launch: the
# recorder asks on every launch (for ``time.sleep`` and the normaliser), and a
# scan walks every global of every backend module (~3 ms for bottle_ref).
# Keyed by the backend's own package. Valid while nothing that the scan reads
# changed: `sys.modules` (its length and last-inserted name: an import or a
# removal changes one of them), each scanned module still being the one in
# `sys.modules`, and the identity of every global of each (a global added,
# removed or rebound, e.g. a lazy ``global helpers; import helpers`` or a
# test's monkeypatch). The globals' values are held, so their ids stay theirs.
# What is not seen: a module's global that is itself mutated in place (a dict
# gaining a reference to another package), as before this cache: the scan
# only ever looked at the globals themselves.
_SCANS: dict[str, tuple[Any, ...]] = {}  # own -> (fingerprint, scanned, packages, modules)


def _modules_fingerprint() -> tuple[int, Any]:
    mods = sys.modules
    return len(mods), next(reversed(mods.keys()), None)


def _own_modules(own: str) -> list[tuple[str, ModuleType]]:
    below = own + "."  # `_top(name) == own`, without splitting every loaded module's name
    return [(name, mod) for name, mod in list(sys.modules.items())
            if mod is not None and (name == own or name.startswith(below))]


def _still_valid(entry) -> bool:
    fingerprint, scanned, _, _ = entry
    if fingerprint != _modules_fingerprint():
        return False
    get = sys.modules.get
    for name, mod, _values, ids in scanned:
        if get(name) is not mod:
            return False
        if tuple(map(id, vars(mod).values())) != ids:
            return False
    return True


def _scan(own: str) -> tuple[str, ...]:
    found: dict[str, None] = {own: None}
    scanned = []
    fingerprint = _modules_fingerprint()
    for name, mod in _own_modules(own):
        values = tuple(vars(mod).values())
        scanned.append((name, mod, values, tuple(map(id, values))))
        for value in values:
            if isinstance(value, ModuleType):
                top = _top(value.__name__)
            else:
                top = _top(getattr(value, "__module__", None)
                           if callable(value) or isinstance(value, type) else None)
            if not _is_library(top) and top in sys.modules:
                found.setdefault(top, None)
    packages = tuple(found)
    _SCANS[own] = (fingerprint, tuple(scanned), packages, None)
    return packages


def backend_packages(backend: Any) -> tuple[str, ...]:
    """``(own package, packages its modules import from...)``, own first.
    Cached while the loaded modules and their globals are unchanged (see
    `_SCANS`)."""
    own = own_package(backend)
    entry = _SCANS.get(own)
    if entry is not None and _still_valid(entry):
        return entry[2]
    return _scan(own)


def backend_modules(backend: Any) -> list[ModuleType]:
    """Loaded modules of every package in `backend_packages` (a new list;
    cached like it)."""
    own = own_package(backend)
    tops = set(backend_packages(backend))
    entry = _SCANS[own]
    if entry[3] is None:
        mods = [m for name, m in list(sys.modules.items())
                if m is not None and _top(name) in tops]
        entry = _SCANS[own] = (*entry[:3], mods)
    return list(entry[3])


def package_dir(top: str):
    """The directory of loaded package ``top`` (None for a namespace or a
    single-file module outside a package directory)."""
    from pathlib import Path

    mod = sys.modules.get(top)
    path = getattr(mod, "__file__", None)
    return Path(path).parent if path else None
