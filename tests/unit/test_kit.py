"""bottle_kit: the author's toolkit is a documented, versioned surface, and the
worked outside backend (examples/outside_backend) uses it and nothing else of
the project (issue 18)."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import bottle_kit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "outside_backend"
SNAPSHOTS = EXAMPLE / "snapshots" / "outside"


def argv_fingerprint() -> str:
    h = hashlib.sha256()
    for f in sorted(SNAPSHOTS.glob("*.txt")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def test_every_exported_name_exists_and_is_documented():
    assert re.fullmatch(r"\d+\.\d+\.\d+", bottle_kit.KIT_VERSION)
    missing = [n for n in bottle_kit.__all__ if not hasattr(bottle_kit, n)]
    assert not missing
    doc = bottle_kit.__doc__
    undocumented = [n for n in bottle_kit.__all__ if n != "KIT_VERSION" and f"`{n}`" not in doc]
    assert not undocumented, f"names __all__ exports but the module docstring never names: {undocumented}"
    assert len(set(bottle_kit.__all__)) == len(bottle_kit.__all__)


def test_changelog_names_the_current_version_and_argv_fingerprint():
    """An argv change of the kit moves the example's snapshots: it must come
    with a version bump and a CHANGELOG line carrying the new fingerprint."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    kit = text.split("## bottle_kit", 1)[1].split("\n## ", 1)[0]
    first = re.search(r"^- (\d+\.\d+\.\d+) \(argv fingerprint ([0-9a-f]{16})\)", kit, re.M)
    assert first, "CHANGELOG.md has no bottle_kit entry"
    version, fingerprint = first.groups()
    assert version == bottle_kit.KIT_VERSION, (
        f"bottle_kit.KIT_VERSION is {bottle_kit.KIT_VERSION} but the newest CHANGELOG line is "
        f"{version}")
    assert fingerprint == argv_fingerprint(), (
        f"the argv the kit makes a backend run changed (examples/outside_backend/snapshots; "
        f"fingerprint {argv_fingerprint()}): bump bottle_kit.KIT_VERSION and add a "
        f"CHANGELOG.md line under bottle_kit with the new fingerprint")


def test_the_outside_example_imports_only_the_seam_and_the_kit():
    sources = sorted((EXAMPLE / "src").rglob("*.py"))
    assert sources
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
                assert top not in ("bottle_ref", "bottle_bundle", "conformance"), (path, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("bottle_ref", "bottle_bundle"), path
    pyproject = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    assert 'outside = "outside_backend:OutsideBackend"' in pyproject


def test_upstream_ca_conventions_are_what_the_bundle_reads():
    from bottle_api import conventions
    from bottle_bundle import egress_proxy, pipelock_proxy
    from bottle_ref.backends import docker, smolmachines

    assert pipelock_proxy.UPSTREAM_CA_ENV == conventions.PIPELOCK_UPSTREAM_CA_ENV
    assert egress_proxy.UPSTREAM_CA_ENV == conventions.EGRESS_UPSTREAM_CA_ENV
    assert set(docker.UPSTREAM_CA_VARS.values()) == set(smolmachines.UPSTREAM_CA_VARS) == {
        conventions.PIPELOCK_UPSTREAM_CA_ENV, conventions.EGRESS_UPSTREAM_CA_ENV}
    rows = {value for _, value, _ in conventions.TABLE}
    assert {"PIPELOCK_UPSTREAM_CA", "EGRESS_UPSTREAM_CA", "BOTTLE_UPSTREAM_CA_FILE"} <= rows
