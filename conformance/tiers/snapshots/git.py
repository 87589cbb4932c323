"""Snapshot-tier checks for PROV-GITUSER, PROV-CWD-GIT."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ...scenarios import Scenario, scenario_params
from .facts import WORKDIR
from .readers import command_at, joined, launched, node_problem, show


class GitSnapshots:
    """PROV-GITUSER, PROV-CWD-GIT."""

    # -- PROV-GIT --------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-GITUSER", tier="snapshot"))
    def test_git_user_one_call_per_field_as_node(self, backend, scenario: Scenario,
                                                 bottle_recorder):
        """One `git config --global user.<field> <value>` per set field, as
        node with HOME=/home/node; none for unset fields."""
        rec = launched(bottle_recorder(scenario))
        values = dict(rec.spec.git_user.fields())
        calls_by_field: dict[str, set[int]] = {}
        for field in ("name", "email"):
            words = ["git", "config", "--global", f"user.{field}"]
            hits = [(i, c.argv, command_at(c.argv, words)) for i, c in rec.indexed()
                    if c.kind == "run"]
            calls_by_field[field] = {i for i, _, at in hits if at >= 0}
            hits = [(a, at) for _, a, at in hits if at >= 0]
            expected = 1 if field in values else 0
            assert len(hits) == expected, (
                f"git_user.{field} is {'set' if expected else 'unset'}: expected "
                f"{expected} `git config --global user.{field}` call(s), saw {len(hits)}: "
                + ("; ".join(show(rec, a) for a, _ in hits) or "none"))
            for argv, at in hits:
                problem = node_problem(argv, at)
                assert problem is None, (
                    f"`git config --global user.{field}` must run as node with "
                    f"HOME=/home/node (else it writes /root/.gitconfig), but {problem}: "
                    f"{show(rec, argv)}")
                if argv[at] == "git":
                    value = argv[at + 4] if at + 4 < len(argv) else None
                    assert value == values[field], (
                        f"user.{field} is set to {value!r}, the spec says "
                        f"{values[field]!r}: {show(rec, argv)}")
        shared = calls_by_field["name"] & calls_by_field["email"]
        assert not shared, (
            "user.name and user.email are set by one command; provisioning runs one "
            "`git config --global user.<field>` per field: "
            + "; ".join(show(rec, rec.runner.calls[i].argv) for i in sorted(shared)))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-GIT-CWD"))
    def test_cwd_git_copied_and_chowned(self, backend, scenario: Scenario, bottle_recorder):
        """With a cwd: its .git is copied to /home/node/work/.git once, then
        chowned -R to node. Without: nothing lands there."""
        rec = launched(bottle_recorder(scenario))
        target = f"{WORKDIR}/.git"
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        if rec.spec.cwd is None:
            touching = [a for _, a in runs if any(target in t for t in a)]
            assert not touching, (
                f"no cwd is set, yet commands touch {target}: "
                + "; ".join(show(rec, a) for a in touching))
            return
        source = str(Path(rec.spec.cwd) / ".git")
        copies = [(i, a) for i, a in runs
                  if source in a and any(t.endswith(target) for t in a)]
        assert len(copies) == 1, (
            f"expected one copy of {rec.normalise(source)} to {target}, saw {len(copies)}: "
            + ("; ".join(show(rec, a) for _, a in copies) or "none"))
        chown = re.compile(rf"chown -R node(:node)? {re.escape(WORKDIR)}(/\.git)?(\s|$)")
        later = [a for i, a in runs if i > copies[0][0] and chown.search(joined(a))]
        assert later, (
            f"{target} is copied but never `chown -R node` afterwards, so node cannot "
            "use the checkout")
