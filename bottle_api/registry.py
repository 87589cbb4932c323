"""Backends and their registry (the ``bottle.backends`` entry-point group).

A backend is named either by an entry-point name (``docker``,
``smolmachines``, or one a third-party package registers) or by an import
path ``pkg.mod:factory``, so an author can test a backend that is not
installed as a distribution. The object found may be a `Backend` subclass
(instantiated with no arguments), a ready `Backend` instance, or a callable
returning one.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from .backend import Backend, Bottle

__all__ = ["ENTRY_POINT_GROUP", "Backend", "BackendNotFound", "Bottle",
           "available_backends", "get_backend"]

ENTRY_POINT_GROUP = "bottle.backends"


class BackendNotFound(ValueError):
    """The named backend does not exist or could not be loaded.

    A `ValueError` because it is bad user input (a name or import path); the
    message lists the installed names so the user can correct it.
    """


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Entry-point names registered in the ``bottle.backends`` group, sorted."""
    return sorted(_entry_points())


def _available_hint() -> str:
    names = available_backends()
    listed = ", ".join(names) if names else "none installed"
    return f"available: {listed}; or give an import path 'pkg.mod:factory'"


def _import_path(spec: str) -> object:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise BackendNotFound(f"bad backend import path {spec!r} (expected 'pkg.mod:factory')")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendNotFound(f"cannot import backend module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself fails (SyntaxError, an error at import)
        raise BackendNotFound(f"cannot import backend module {module_name!r}: "
                              f"{type(exc).__name__}: {exc}") from None
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except Exception:  # AttributeError, or a module __getattr__ raising anything
            raise BackendNotFound(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return obj


def _entry_point(name: str) -> object:
    ep = _entry_points().get(name)
    if ep is None:
        raise BackendNotFound(f"unknown backend {name!r} ({_available_hint()})")
    try:
        return ep.load()
    except Exception as exc:  # a registered but broken plugin: say which, not a traceback
        raise BackendNotFound(
            f"backend {name!r} is registered ({ep.value}) but failed to load: "
            f"{type(exc).__name__}: {exc}") from None


def get_backend(name_or_spec: str) -> Backend:
    """A `Backend` instance for an entry-point name or a ``pkg.mod:factory`` path.

    Raises `BackendNotFound` for an unknown name, an unimportable path, or an
    object that neither is nor makes a `Backend`.
    """
    name_or_spec = (name_or_spec or "").strip()
    if not name_or_spec:
        raise BackendNotFound(f"no backend given ({_available_hint()})")
    obj = _import_path(name_or_spec) if ":" in name_or_spec else _entry_point(name_or_spec)
    if isinstance(obj, Backend):
        return obj
    if not callable(obj):
        raise BackendNotFound(f"{name_or_spec!r} is {type(obj).__name__}, not a Backend "
                              "class or factory")
    try:
        backend = obj()
    except TypeError as exc:  # abstract class, or a factory that needs arguments
        raise BackendNotFound(f"cannot create backend {name_or_spec!r}: {exc}") from None
    except Exception as exc:  # the factory itself fails: say so, not a traceback
        raise BackendNotFound(f"cannot create backend {name_or_spec!r}: "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(backend, Backend):
        raise BackendNotFound(f"{name_or_spec!r} returned {type(backend).__name__}, "
                              "not a bottle_api.Backend")
    return backend
