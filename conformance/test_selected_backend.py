"""Collected by ``pytest --pyargs conformance --bottle-backend=NAME``.

Runs the whole suite against the backend the plugin loaded; skipped, with
a message saying how to select one, when none is selected.
"""

import pytest

from conformance.base import BackendConformance


@pytest.mark.bottle_selected_backend
class TestSelectedBackend(BackendConformance):
    """The contract, against the plugin's default ``backend`` fixture."""
