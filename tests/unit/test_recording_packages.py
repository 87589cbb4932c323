"""`conformance.recording.packages`: the scan of a backend's packages is
cached (the recorder asks on every recorded launch), and the cache follows
every change the scan itself would see."""

import importlib
import sys
import time

import pytest

from conformance.recording import packages


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A backend package ``sbk_own`` and two helper packages it may come
    to use; removed from `sys.modules` afterwards."""
    for name, text in {
        "sbk_own/__init__.py": "from .core import Backend\n",
        "sbk_own/core.py": "class Backend:\n    pass\n",
        "sbk_help_a/__init__.py": "def helper():\n    return 1\n",
        "sbk_help_b/__init__.py": "def helper():\n    return 2\n",
    }.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("sbk_own")
    for name in [n for n in sys.modules if n.startswith("sbk_")]:
        del sys.modules[name]
    packages._SCANS.pop("sbk_own", None)


def _fresh(backend) -> tuple[str, ...]:
    packages._SCANS.pop(packages.own_package(backend), None)
    return packages.backend_packages(backend)


def test_a_second_ask_is_served_from_the_cache(fake, monkeypatch):
    backend = fake.Backend()
    first = packages.backend_packages(backend)
    assert first == ("sbk_own",)
    monkeypatch.setattr(packages, "_scan", lambda own: pytest.fail("scanned again"))
    assert packages.backend_packages(backend) == first


def test_a_rebound_global_is_seen(fake, monkeypatch):
    backend = fake.Backend()
    assert packages.backend_packages(backend) == ("sbk_own",)
    helper = importlib.import_module("sbk_help_a")
    assert packages.backend_packages(backend) == ("sbk_own",)  # loaded, not used yet
    monkeypatch.setattr(fake.core, "Backend", fake.core.Backend)  # same value: still cached
    monkeypatch.setattr(fake.core, "time", time, raising=False)  # stdlib: not a package
    assert packages.backend_packages(backend) == ("sbk_own",)
    monkeypatch.setattr(fake.core, "helper", helper.helper, raising=False)
    assert packages.backend_packages(backend) == ("sbk_own", "sbk_help_a") == _fresh(backend)
    monkeypatch.setattr(fake.core, "helper", importlib.import_module("sbk_help_b").helper)
    assert packages.backend_packages(backend) == ("sbk_own", "sbk_help_b") == _fresh(backend)


def test_a_new_module_of_the_backend_is_seen(fake, tmp_path):
    backend = fake.Backend()
    assert packages.backend_packages(backend) == ("sbk_own",)
    assert [m.__name__ for m in packages.backend_modules(backend)] == ["sbk_own.core", "sbk_own"]
    (tmp_path / "sbk_own" / "later.py").write_text("from sbk_help_a import helper\n")
    importlib.import_module("sbk_own.later")
    assert packages.backend_packages(backend) == ("sbk_own", "sbk_help_a") == _fresh(backend)
    assert {m.__name__ for m in packages.backend_modules(backend)} == {
        "sbk_own", "sbk_own.core", "sbk_own.later", "sbk_help_a"}


def test_a_module_replaced_under_its_name_is_seen(fake):
    backend = fake.Backend()
    helper = importlib.import_module("sbk_help_a")
    assert packages.backend_packages(backend) == ("sbk_own",)
    fingerprint = packages._modules_fingerprint()
    new = type(fake.core)("sbk_own.core")  # another module object under the same name
    new.helper = helper.helper
    sys.modules["sbk_own.core"] = new
    assert packages._modules_fingerprint() == fingerprint  # only identity tells
    assert packages.backend_packages(backend) == ("sbk_own", "sbk_help_a") == _fresh(backend)
