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


def backend_packages(backend: Any) -> tuple[str, ...]:
    """``(own package, packages its modules import from...)``, own first."""
    own = own_package(backend)
    found: dict[str, None] = {own: None}
    below = own + "."  # `_top(name) == own`, without splitting every loaded module's name
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == own or name.startswith(below)):
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, ModuleType):
                top = _top(value.__name__)
            else:
                top = _top(getattr(value, "__module__", None)
                           if callable(value) or isinstance(value, type) else None)
            if not _is_library(top) and top in sys.modules:
                found.setdefault(top, None)
    return tuple(found)


def backend_modules(backend: Any) -> list[ModuleType]:
    """Loaded modules of every package in `backend_packages`."""
    tops = set(backend_packages(backend))
    return [m for name, m in list(sys.modules.items())
            if m is not None and _top(name) in tops]


def package_dir(top: str):
    """The directory of loaded package ``top`` (None for a namespace or a
    single-file module outside a package directory)."""
    from pathlib import Path

    mod = sys.modules.get(top)
    path = getattr(mod, "__file__", None)
    return Path(path).parent if path else None
