"""Snapshot-tier checks for PROV-PROMPT, PROV-SKILLS."""

from __future__ import annotations

import re

import pytest

from ...recording import contains_seq, is_guest_copy, is_guest_exec
from ...scenarios import Scenario, scenario_params
from .facts import _CLAUDE_ONLY, PROMPT_FLAG, PROMPT_PATH, SKILLS_DIR
from .readers import joined, launched, show


class PromptSkillSnapshots:
    """PROV-PROMPT, PROV-SKILLS."""

    # -- PROV-PROMPT / SKILLS ----------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-PROMPT", tier="snapshot"))
    def test_prompt_flag_iff_prompt(self, backend, scenario: Scenario, bottle_recorder):
        """--append-system-prompt-file <prompt path> in agent_argv iff a claude
        bottle's prompt is non-empty; the prompt lands 0600, node, as a file."""
        rec = launched(bottle_recorder(scenario), agent=True)
        want = rec.spec.agent == "claude" and bool(rec.spec.prompt)
        for tty in (False, True):
            argv = rec.agent_argvs[tty]
            has = contains_seq(argv, [PROMPT_FLAG, PROMPT_PATH]) >= 0
            if want:
                assert has, (
                    f"the prompt is non-empty but agent_argv(tty={tty}) lacks "
                    f"`{PROMPT_FLAG} {PROMPT_PATH}`: {show(rec, argv)}")
            else:
                assert not any(PROMPT_FLAG in t for t in argv), (
                    f"{PROMPT_FLAG} is passed although "
                    f"{'the prompt is empty' if rec.spec.agent == 'claude' else 'the agent is not claude'}"
                    f": {show(rec, argv)}")
        if not want:
            return
        text = rec.spec.prompt.strip()
        leaked = [a for a in rec.all_argvs() if any(text in t for t in a)]
        assert not leaked, "the prompt text is on an argv; it must travel as a file"
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        copy = next((i for i, a in runs if any(t.endswith(PROMPT_PATH) for t in a)
                     and (is_guest_copy(a) or not is_guest_exec(a))), None)
        assert copy is not None, f"no command copies the prompt to {PROMPT_PATH}"
        for pattern, what in ((rf"chmod 0?600 {re.escape(PROMPT_PATH)}", "chmod 0600"),
                              (rf"chown node(:node)? {re.escape(PROMPT_PATH)}", "chown node")):
            assert any(i > copy and re.search(pattern, joined(a)) for i, a in runs), (
                f"the prompt file is copied but never `{what} {PROMPT_PATH}` afterwards")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-SKILLS", tier="snapshot",
                                                         **_CLAUDE_ONLY))
    def test_skills_copied_and_chowned(self, backend, scenario: Scenario, bottle_recorder):
        """Each skill dir is copied once to /home/node/.claude/skills/<name>
        and chowned -R to node afterwards; no skills, nothing there."""
        rec = launched(bottle_recorder(scenario))
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        if not rec.spec.skills:
            touching = [a for _, a in runs if any(f"{SKILLS_DIR}/" in t for t in a)]
            assert not touching, ("no skills declared, yet commands write into "
                                  f"{SKILLS_DIR}/: " + "; ".join(show(rec, a) for a in touching))
            return
        for skill in rec.spec.skills:
            dest = f"{SKILLS_DIR}/{skill.name}"
            copies = [(i, a) for i, a in runs
                      if str(skill) in a and any(t.endswith(dest) for t in a)]
            assert len(copies) == 1, (
                f"expected one copy of skill {skill.name!r} to {dest}, saw {len(copies)}: "
                + ("; ".join(show(rec, a) for _, a in copies) or "none"))
            chown = re.compile(rf"chown -R node(:node)? {re.escape(SKILLS_DIR)}"
                               rf"(/{re.escape(skill.name)})?(\s|$)")
            assert any(i > copies[0][0] and chown.search(joined(a)) for i, a in runs), (
                f"skill {skill.name!r} is copied but never `chown -R node` afterwards")
