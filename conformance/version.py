"""The suite's version, as installed (reports record it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bottle-conformance")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"
