"""The author's path, needing nothing from the repository (issue 18).

Build the wheel (not editable) once per session from a copy of the tracked
sources, install it with the worked example backend
(`examples/outside_backend`, built to a wheel of its own) into a fresh venv
outside the checkout, and from a directory of the author's run
``bottle-conformance run --backend outside --tier snapshot,invariant
--certify``: a report and a certification, with no file of ``tests/``.

Offline: the wheels are built without build isolation (setuptools from the
dev extras: the PEP 517 ``build_wheel`` hook of each project's
``build-backend``, called as ``pip wheel --no-build-isolation`` calls it, less
pip's own start-up) and installed with ``--no-index --no-deps``; the fresh venv
sees the suite's third-party dependencies (pytest, hypothesis, ...) through a
``.pth`` naming a directory of links to exactly those distributions, never
this checkout or its editable install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "outside_backend"
# What the wheel is built from: the packaged sources and metadata only.
SOURCES = ("pyproject.toml", "README.md", "bottle_api", "bottle_bundle", "bottle_kit",
           "bottle_ref", "conformance")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", ".hypothesis")


def _run(argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run([str(a) for a in argv], **kw)


def _ok(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _dependency_closure(root: str) -> list[metadata.Distribution]:
    """The installed distributions ``root`` needs at run time (no extras)."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(metadata.requires(root) or ())
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[key] = dist
        todo += list(dist.requires or ())
    return list(seen.values())


def _link_dependencies(target: Path) -> None:
    """Link every top-level file or package of the suite's dependencies (and
    their dist-info, for entry points) into ``target``."""
    target.mkdir()
    for dist in _dependency_closure("bottle-conformance"):
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or ()}:
            src = base / top
            if top in ("..", "__pycache__") or not src.exists() or (target / top).exists():
                continue
            if top.endswith(".pth") or "bottle" in top.lower() or top == "conformance":
                continue
            (target / top).symlink_to(src)


def _build_wheel(src: Path, out: Path) -> Path:
    """``src``'s wheel into ``out``, by the PEP 517 hook of its ``build-backend``
    (what ``pip wheel --no-deps --no-build-isolation`` runs; a fresh
    interpreter in ``src``, as pip's hook runner; ~1 s less CPU a wheel)."""
    import tomllib

    backend = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]["build-backend"]
    out.mkdir(exist_ok=True)
    _ok(_run([sys.executable, "-c", "import importlib, sys; "
              "print(importlib.import_module(sys.argv[1]).build_wheel(sys.argv[2]))",
              backend, out], cwd=src), f"build_wheel {src.name} ({backend})")
    return out


@pytest.fixture(scope="session")
def author_venv(tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with the two wheels installed.

    Built once per run: under pytest-xdist (`nox -s unit`) the workers share
    one, in the run's common temp root, built by whichever worker asks first
    while the others wait on a lock (a build that failed is redone)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _make_author_venv(tmp_path_factory.mktemp("author"))
    import fcntl

    root = tmp_path_factory.getbasetemp().parent
    base, done = root / "author-shared", root / "author-shared.done"
    with open(root / "author-shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            venv = _make_author_venv(base)
            done.write_text(str(venv))
        return Path(done.read_text())


def _make_author_venv(base: Path) -> Path:
    try:
        import setuptools
    except ImportError:  # pragma: no cover
        pytest.fail("building the wheel needs setuptools (the dev extras: pip install -e '.[dev]')")
    major = int(setuptools.__version__.split(".")[0])
    assert major >= 70, (f"setuptools {setuptools.__version__} cannot build this wheel offline; "
                         "install the dev extras (setuptools>=70.1)")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy2(path, src / name)
    wheels = base / "wheels"
    _build_wheel(src, wheels)
    example = base / "example-src"
    shutil.copytree(EXAMPLE, example, ignore=IGNORE)
    _build_wheel(example, wheels)
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert len(built) == 2 and built[0].startswith("bottle_conformance-"), built
    venv = base / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv]), "python -m venv")
    purelib = Path(_ok(_run([venv / "bin" / "python", "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"]),
                       "venv python").stdout.strip())
    deps = base / "deps"
    _link_dependencies(deps)
    (purelib / "zz-bottle-test-deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    _ok(_run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
              "-q", "--no-compile", "--no-index", "--no-deps", *sorted(wheels.glob("*.whl"))]), "pip install")
    return venv


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOTTLE_", "PYTHON", "PYTEST", "VIRTUAL_ENV"))}
    return env


def test_the_suite_runs_from_the_wheel_alone(author_venv, tmp_path):
    py = author_venv / "bin" / "python"
    where = _ok(_run([py, "-c", "import conformance, bottle_kit, bottle_api, outside_backend;"
                      "print(conformance.__file__); print(outside_backend.__file__)"],
                     cwd=tmp_path, env=_clean_env()), "import").stdout.split()
    assert all(str(author_venv) in w and str(ROOT) not in w for w in where), where


def test_an_outside_backend_certifies_from_the_wheel(author_venv, tmp_path):
    """An author's directory (the example's snapshots and pyproject, copied
    away from the checkout) and the one command."""
    work = tmp_path / "my-backend"
    shutil.copytree(EXAMPLE / "snapshots", work / "snapshots")
    shutil.copy2(EXAMPLE / "pyproject.toml", work / "pyproject.toml")
    tool = author_venv / "bin" / "bottle-conformance"
    proc = _run([tool, "run", "--backend", "outside", "--tier", "snapshot,invariant",
                 "--certify", "--report", "report.json", "--", "-q", "-p", "no:randomly",
                 "-p", "no:cacheprovider"], cwd=work, env=_clean_env())
    _ok(proc, "bottle-conformance run")
    out = proc.stdout
    assert "# bottle-conformance report: outside 0.1" in out
    assert "- profile core: PASSED" in out and "- profile container-guest: PASSED" in out
    assert "certify: PASSED (tiers invariant+snapshot only)" in out
    data = json.loads((work / "report.json").read_text())
    assert data["profiles"] == ["core", "docker-cli", "container-guest"]
    states = {r["clause_id"]: r["state"] for r in data["results"]}
    assert states["SNAP-MATCH"] == "PASSED" and states["PROFILE-DECLARED"] == "PASSED"
    assert states["SMOLVM-ARGV"] == "NOT_APPLICABLE"
    assert not {c for c, s in states.items() if s in ("FAILED", "ERROR")}, states
    _ok(_run([tool, "verify", "report.json", "--strict", "--tier", "snapshot,invariant"],
             cwd=work, env=_clean_env()), "verify --strict")
    assert not list(work.glob("build")) and not (ROOT / "build").exists()


def test_run_refuses_an_unknown_backend_in_one_line(author_venv, tmp_path):
    proc = _run([author_venv / "bin" / "bottle-conformance", "run", "--backend", "nosuch"],
                cwd=tmp_path, env=_clean_env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuch" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
