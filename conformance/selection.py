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

from .capabilities import (
    Capability,
    Profile,
    UnknownCapabilityError,
    UnknownProfileError,
    parse_capabilities,
    parse_profiles,
)


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
    """What the report says about the backend under test.

    ``broken`` says why the backend could not describe itself (a ``name``,
    ``version`` or ``capabilities`` that raised): its clause tests end as
    ERROR with that reason, and the run still finishes with a report.
    """

    name: str
    version: str
    capabilities: frozenset[Capability]
    broken: str = ""
    # Declared profiles, core always included (`Backend.profiles`).
    profiles: frozenset[Profile] = frozenset({Profile.CORE})


def _read(backend: Backend, attr: str, default: object, problems: list[str]) -> object:
    try:
        return getattr(backend, attr, default)
    except Exception as exc:  # a property of third-party code
        text = str(exc).strip().splitlines()
        problems.append(f"backend property {attr!r} raised {type(exc).__name__}"
                        + (f": {text[0][:200]}" if text else ""))
        return default


def identify(backend: Backend) -> BackendIdentity:
    """Name, version and parsed capabilities of ``backend``.

    Raises `UnknownCapabilityError` if the backend declares a capability or
    profile outside the vocabulary (a typo there would silently turn clauses
    NOT_SUPPORTED or NOT_APPLICABLE). A
    property that raises is not an exception here: it is recorded in
    ``broken`` (the name falls back to the class name, capabilities to none).
    """
    problems: list[str] = []
    raw_name = _read(backend, "name", None, problems)
    name = str(raw_name or type(backend).__name__)
    version = str(_read(backend, "version", "0", problems))
    raw_caps = _read(backend, "capabilities", (), problems) or ()
    try:
        caps = parse_capabilities(raw_caps)
    except UnknownCapabilityError as exc:
        raise UnknownCapabilityError(f"backend {name} declares an {exc}") from None
    except Exception as exc:  # not iterable, or iterating raised
        problems.append(f"backend property 'capabilities' is unusable: {type(exc).__name__}: "
                        f"{str(exc)[:200]}")
        caps = frozenset()
    raw_profiles = _read(backend, "profiles", (), problems) or ()
    try:
        profiles = parse_profiles(raw_profiles)
    except UnknownProfileError as exc:
        raise UnknownCapabilityError(f"backend {name} declares an {exc}") from None
    except Exception as exc:
        problems.append(f"backend property 'profiles' is unusable: {type(exc).__name__}: "
                        f"{str(exc)[:200]}")
        profiles = frozenset({Profile.CORE})
    return BackendIdentity(name, version, caps, "; ".join(problems), profiles)
