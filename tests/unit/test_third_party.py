"""The suite as a backend author meets it: a separate package, with its own
``bottle.backends`` entry point, runs the shipped suite both ways (the
umbrella subclass and ``--pyargs conformance --bottle-backend NAME``) and
keeps its snapshots in its own repository."""

import json

import pytest

pytest_plugins = ["pytester"]

PACKAGE = '''
"""A third-party backend: the reference docker backend under its own name."""
from bottle_ref.backends.docker import DockerBackend


class MyBackend(DockerBackend):
    name = "mybottle"
    version = "0.1"
'''

DIST_INFO = {
    "METADATA": "Metadata-Version: 2.1\nName: mybottle\nVersion: 0.1\n",
    "entry_points.txt": "[bottle.backends]\nmybottle = mybottle:MyBackend\n",
}

UMBRELLA = '''
import pytest
from conformance import BackendConformance
from mybottle import MyBackend


class TestMine(BackendConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return MyBackend()
'''


@pytest.fixture
def author(pytester, monkeypatch):
    """An author's checkout: package, installed-looking dist-info, own tests."""
    for name in ("BOTTLE_BACKEND", "BOTTLE_SNAPSHOT_DIR", "BOTTLE_REPORT", "BOTTLE_REQUIRE"):
        monkeypatch.delenv(name, raising=False)
    pytester.mkpydir("mybottle").joinpath("__init__.py").write_text(PACKAGE)
    dist = pytester.mkdir("mybottle-0.1.dist-info")
    for name, text in DIST_INFO.items():
        dist.joinpath(name).write_text(text)
    pytester.makepyprojecttoml(
        '[tool.bottle-conformance]\nhypothesis_profile = "ci"\n'
        'snapshot_dir = "snapshots/mybottle"\n'
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    return pytester


def _report(path):
    data = json.loads(path.read_text())
    return {r["clause_id"]: r["state"] for r in data["results"]}, data


def test_entry_point_path_writes_then_matches_own_snapshots(author):
    first = author.runpytest_subprocess(
        "--pyargs", "conformance", "--bottle-backend", "mybottle",
        "--bottle-tier", "snapshot", "--snapshot-update", "-q", "-p", "no:randomly")
    assert first.ret == 0, first.stdout.str()[-2000:]
    snaps = sorted(p.name for p in (author.path / "snapshots" / "mybottle").iterdir())
    assert "minimal-claude.txt" in snaps and len(snaps) >= 6
    second = author.runpytest_subprocess(
        "--pyargs", "conformance", "--bottle-backend", "mybottle",
        "--bottle-tier", "snapshot,invariant", "--bottle-report", "r.json", "-p", "no:randomly")
    assert second.ret == 0, second.stdout.str()[-2000:]
    states, data = _report(author.path / "r.json")
    assert data["backend"] == "mybottle" and data["backend_version"] == "0.1"
    assert states["SNAP-MATCH"] == "PASSED"
    assert "FAILED" not in states.values()


def test_umbrella_subclass_in_the_authors_own_tests(author):
    author.makepyfile(test_mine=UMBRELLA)
    author.runpytest_subprocess("--bottle-tier", "snapshot", "--snapshot-update", "-q",
                                "-p", "no:randomly")
    result = author.runpytest_subprocess("--bottle-tier", "snapshot", "--bottle-report",
                                         "r.json", "-q", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-2000:]
    states, data = _report(author.path / "r.json")
    assert data["backend"] == "mybottle"
    # a docker-based backend declares no smolvm profile: those clauses are
    # NOT_APPLICABLE (a state of their own, neither passed nor failed)
    smolvm_only = {"SMOLVM-ARGV", "SMOLVM-FROM-SIDECAR", "SMOLVM-CP-FILE",
                   "SMOLVM-VERSION-FIRST", "SMOLVM-NO-NET", "SMOLVM-SOCKETS"}
    assert data["profiles"] == ["core", "docker-cli", "container-guest"]
    assert states and {c for c, s in states.items() if s != "PASSED"} <= smolvm_only, states
    assert all(states[c] == "NOT_APPLICABLE" for c in smolvm_only if c in states), states


def test_unknown_entry_point_is_a_clear_usage_error(author):
    result = author.runpytest_subprocess("--pyargs", "conformance", "--bottle-backend", "nosuch")
    assert result.ret != 0
    err = result.stderr.str()
    assert "nosuch" in err and "mybottle" in err and "Traceback" not in err
