"""Turning ``--bottle-backend NAME`` into a `Backend` instance, with clear errors.

The lookup is `bottle_api.registry.get_backend` (entry-point names of the
``bottle.backends`` group, or ``package.module:factory``); this module only
turns whatever goes wrong into one `BackendSelectionError` line, and says
what the report needs to know about the backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from bottle_api.registry import get_backend
from bottle_api.backend import Backend

from .capabilities import Capability, UnknownCapabilityError, parse_capabilities


class BackendSelectionError(ValueError):
    """The selected backend could not be found, imported or built."""


def load_backend(name: str) -> Backend:
    """The backend ``name`` selects; `BackendSelectionError` if it cannot."""
    try:
        backend = get_backend(name)
    except ValueError as exc:  # BackendNotFound: already names the backend
        raise BackendSelectionError(str(exc)) from None
    except Exception as exc:  # a third-party factory failing must not dump a traceback
        raise BackendSelectionError(
            f"backend {name!r}: loading failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(backend, Backend):  # pragma: no cover - get_backend checks this
        raise BackendSelectionError(
            f"backend {name!r}: got {type(backend).__name__}, not a Backend"
        )
    return backend


@dataclass(frozen=True)
class BackendIdentity:
    """What the report says about the backend under test."""

    name: str
    version: str
    capabilities: frozenset[Capability]


def identify(backend: Backend) -> BackendIdentity:
    """Name, version and parsed capabilities of ``backend``.

    Raises `UnknownCapabilityError` if the backend declares a name outside the
    vocabulary (a typo there would silently turn clauses NOT_SUPPORTED).
    """
    name = str(getattr(backend, "name", None) or type(backend).__name__)
    version = str(getattr(backend, "version", "0"))
    try:
        caps = parse_capabilities(getattr(backend, "capabilities", ()) or ())
    except UnknownCapabilityError as exc:
        raise UnknownCapabilityError(f"backend {name} declares an {exc}") from None
    return BackendIdentity(name, version, caps)
