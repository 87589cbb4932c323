"""git-gate gitconfig: every upstream gets an insteadOf to the gate (PROV-GITGATE)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bottle_ref.git_gate import insteadof_pairs, render_gitconfig, repo_path
from bottle_api.spec import Upstream

GATE = "git://git-gate:9418"
UPSTREAMS = (
    Upstream("app", "https://example.test/org/app.git"),
    Upstream("lib", "git@example.test:org/lib.git"),
)


def git_config_pairs(text: str, tmp_path) -> list[tuple[str, str]]:
    """Ask git itself how it reads the file (the oracle for quoting)."""
    path = tmp_path / "gitconfig"
    path.write_text(text)
    out = subprocess.run(
        ["git", "config", "--file", str(path), "--get-regexp", r"^url\..*\.insteadof$"],
        capture_output=True, text=True, check=False,
    ).stdout
    pairs = []
    for line in out.splitlines():
        key, value = line.split(" ", 1)
        pairs.append((key[len("url."):-len(".insteadof")], value))
    return pairs


def test_pairs_per_upstream_in_order():
    assert insteadof_pairs(UPSTREAMS, GATE) == [
        ("git://git-gate:9418/app.git", "https://example.test/org/app.git"),
        ("git://git-gate:9418/lib.git", "git@example.test:org/lib.git"),
    ]


def test_trailing_slash_on_gate_url_is_not_doubled():
    assert insteadof_pairs(UPSTREAMS[:1], "git://127.0.0.1:40123/")[0][0] == "git://127.0.0.1:40123/app.git"


def test_rendered_text():
    assert render_gitconfig(UPSTREAMS, GATE) == (
        '[url "git://git-gate:9418/app.git"]\n\tinsteadOf = https://example.test/org/app.git\n'
        '[url "git://git-gate:9418/lib.git"]\n\tinsteadOf = git@example.test:org/lib.git\n'
    )


def test_no_upstreams_no_config():
    assert render_gitconfig((), GATE) == ""
    assert insteadof_pairs((), GATE) == []


def test_repo_path():
    assert repo_path("app") == "/srv/git/app.git"


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


@needs_git
def test_git_reads_rendered_config(tmp_path):
    assert git_config_pairs(render_gitconfig(UPSTREAMS, GATE), tmp_path) == insteadof_pairs(UPSTREAMS, GATE)


@needs_git
def test_git_reads_values_needing_quotes(tmp_path):
    odd = (Upstream("odd", 'https://example.test/a#b;c"d\\e.git'),)
    assert git_config_pairs(render_gitconfig(odd, GATE), tmp_path) == insteadof_pairs(odd, GATE)


@needs_git
@settings(max_examples=25, deadline=None)
@given(st.lists(
    st.tuples(st.from_regex(r"\A[a-z][a-z0-9_-]{0,10}\Z"), st.from_regex(r"\A[a-z]{1,8}\Z")),
    min_size=1, max_size=4, unique_by=lambda t: t[0],
))
def test_every_upstream_gets_an_insteadof(tmp_path_factory, items):
    ups = tuple(Upstream(name, f"https://{host}.test/{name}.git") for name, host in items)
    pairs = git_config_pairs(render_gitconfig(ups, GATE), tmp_path_factory.mktemp("g"))
    assert sorted(pairs) == sorted(insteadof_pairs(ups, GATE))
    assert {gate for gate, _ in pairs} == {f"{GATE}/{u.name}.git" for u in ups}
