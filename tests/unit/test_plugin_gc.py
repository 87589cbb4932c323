"""The plugin freezes the collected heap out of the cyclic GC's reach while a
selected backend's tests run, and gives it back when the run ends (an
in-process run must not leave the outer process frozen)."""

import gc

import pytest
from test_plugin import FAKE, FAKE_BACKEND

pytest_plugins = ["pytester"]

PROBE = '''
import gc

def test_frozen_while_tests_run():
    assert gc.get_freeze_count() > 0
'''


@pytest.fixture
def fake(pytester, monkeypatch):
    for name in ("BOTTLE_BACKEND", "BOTTLE_REQUIRE", "BOTTLE_CERTIFY", "BOTTLE_REPORT",
                 "BOTTLE_SNAPSHOT_DIR", "BOTTLE_HYPOTHESIS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(fakebackend=FAKE_BACKEND, test_probe=PROBE)
    pytester.syspathinsert()
    return pytester


def test_frozen_during_a_selected_run_and_given_back(fake):
    assert gc.get_freeze_count() == 0
    result = fake.runpytest_inprocess(FAKE, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert gc.get_freeze_count() == 0


def test_not_frozen_without_a_backend(fake):
    result = fake.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert gc.get_freeze_count() == 0
