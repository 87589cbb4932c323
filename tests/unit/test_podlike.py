"""Proof that the suite stands apart from the reference (issue 7): `podlike`,
a podman-style backend in a package of its own (tests/thirdparty/podlike),
registered by its own dist-info entry point, passes the static tiers with
the snapshots in its own directory.

It imports the seam (`bottle_api`) and a few reference helpers, never
`bottle_ref.backends`, and it speaks podman's dialect (``--network
NET:alias=X``, ``--user node:node``, ``-v SRC:DST:ro,Z``), so the suite's
argv reading is exercised beyond the reference's docker argv.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PODLIKE = ROOT / "tests" / "thirdparty" / "podlike"
SNAPSHOTS = PODLIKE / "snapshots" / "podlike"
# Reference helpers a third-party backend may reuse; anything else of
# bottle_ref (above all bottle_ref.backends) is off limits.
ALLOWED_REF = {"bottle_ref.planning", "bottle_ref.provision", "bottle_ref.ca", "bottle_ref.state"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_podlike_imports_only_the_seam_and_reference_helpers():
    sources = sorted((PODLIKE / "podlike").rglob("*.py"))
    assert sources
    for src in sources:
        project = {m for m in _imports(src)
                   if m.split(".")[0] in ("bottle_api", "bottle_ref", "bottle_bundle",
                                          "conformance")}
        bad = {m for m in project if not m.startswith("bottle_api") and m not in ALLOWED_REF}
        assert not bad, f"{src.relative_to(ROOT)} imports {sorted(bad)}"


def _in_podlike_path(code: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PODLIKE)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_podlike_is_found_by_its_own_entry_point():
    code = ("from bottle_api.registry import available_backends, get_backend\n"
            "b = get_backend('podlike')\n"
            "print(type(b).__module__, type(b).__name__, 'podlike' in available_backends())")
    out = _in_podlike_path(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["podlike", "PodlikeBackend", "True"]


def test_podlike_passes_the_static_tiers_with_its_own_snapshots(tmp_path):
    """The shipped suite, by entry-point name, against podlike's own
    snapshots: nothing FAILED or ERROR, SNAP-MATCH PASSED."""
    assert (SNAPSHOTS / "minimal-claude.txt").is_file(), (
        "podlike's snapshots are missing: regenerate them with --snapshot-update")
    report = tmp_path / "r.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PODLIKE), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--rootdir", str(tmp_path), "-c", "/dev/null",
         "--pyargs", "conformance", "--bottle-backend", "podlike",
         "--bottle-tier", "snapshot,invariant", "--bottle-snapshot-dir", str(SNAPSHOTS),
         "--bottle-hypothesis-profile", "ci", "--bottle-report", str(report), "-q"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    tail = proc.stdout[-3000:] + proc.stderr[-1000:]
    assert proc.returncode == 0, tail
    data = json.loads(report.read_text())
    states = {r["clause_id"]: r["state"] for r in data["results"]}
    assert data["backend"] == "podlike" and data["backend_version"] == "0.1"
    assert states["SNAP-MATCH"] == "PASSED", tail
    assert not {s for s in states.values()} & {"FAILED", "ERROR"}, states
    # It declares no `live`: the live clauses are deselected, never PASSED.
    assert not any(cid.startswith("LIVE-") for cid in states)


@pytest.mark.parametrize("name", ["minimal-claude.txt", "claude-routes.txt"])
def test_podlike_snapshots_are_its_own(name):
    """Its snapshots show podman's argv, not the reference's."""
    text = (SNAPSHOTS / name).read_text()
    assert "# backend: podlike" in text
    assert "\n  podman\n" in text and "\n  docker\n" not in text
    assert ":alias=" in text and "node:node" in text
