"""Moving a generated case under a real directory so it can be launched."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bottle_api.host import HostContext
from bottle_api.spec import BottleSpec

# -- launching a generated case -------------------------------------------------------


def materialise(spec: BottleSpec, host: HostContext, root: Path) -> tuple[BottleSpec, HostContext]:
    """Move a case under the real directory ``root`` so it can be launched
    with a recording runner: ``state_root`` becomes ``root/state``, each
    skill a real directory ``root/skills/<name>`` (with a SKILL.md), and a
    cwd a real directory with a ``.git`` inside. Only paths change."""
    skills_root = root / "skills"
    skills = []
    for p in spec.skills:
        d = skills_root / Path(p).name
        d.mkdir(parents=True, exist_ok=True)
        # Front matter as both agents' loaders want it (Codex: a description,
        # a name of at most 64 characters; spec.codex_skill_problem).
        (d / "SKILL.md").write_text(
            f"---\nname: {json.dumps(d.name[:64])}\ndescription: A generated skill.\n---\n"
            f"# {d.name}\n", encoding="utf-8")
        skills.append(d)
    cwd = None
    if spec.cwd is not None:
        cwd = root / "work"
        (cwd / ".git").mkdir(parents=True, exist_ok=True)
        (cwd / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    spec = dataclasses.replace(spec, skills=tuple(skills), cwd=cwd)
    host = dataclasses.replace(host, home=root / "home", cwd=cwd or root,
                               state_root=root / "state" / "bottle-ref")
    return spec, host
