"""bottle-conformance: the backend-agnostic conformance suite for bottles.

Two ways in (DESIGN §6):

- subclass the umbrella class and give it your backend::

      from conformance.base import BackendConformance

      class TestMine(BackendConformance):
          @pytest.fixture(scope="class")
          @classmethod
          def backend(cls):
              return MyBackend()

- or ``pytest --pyargs conformance --bottle-backend=pkg.mod:factory``.

The contract itself is `conformance.clauses` (rendered as CONTRACT.md).
This package init stays light: the pytest plugin imports it on every run.
"""

from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "BackendConformance"]


def __getattr__(name: str):
    # Lazy: importing the tiers pulls in hypothesis, and decorating their
    # tests must wait until the plugin has loaded the hypothesis profile.
    if name == "BackendConformance":
        from .base import BackendConformance

        return BackendConformance
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
