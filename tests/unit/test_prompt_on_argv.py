"""PROV-CODEX-PROMPT's "never on an argv" reads argv tokens against a second
recording of the same case (`readers.prompt_on_argv`).

It used to ask whether any token *contained* the prompt text. A generated
prompt may be ``0`` or ``e``, inside 127.0.0.1 and every path, so a correct
backend FAILED under the certify profile's 1,000 examples (the ci profile's
50 never drew one): `--bottle-certify` could not pass.
"""

from __future__ import annotations

import dataclasses

import pytest

from bottle_ref.backends.docker import DockerBackend
from bottle_ref.backends.smolmachines import SmolmachinesBackend
from broken_backends import CodexShortPromptOnArgv
from conformance.scenarios import SCENARIOS
from conformance.tiers.invariants.support import _record_again, _recorded
from conformance.tiers.snapshots.codex import check_codex_prompt
from conformance.tiers.snapshots.readers import prompt_on_argv

SHORT = ["0", "1", "e", "a", "-", ".", "/", "node", "home", "bottle"]


@pytest.fixture
def case(tmp_path):
    """The codex scenario with a prompt, skills and supervise; ``prompt`` swapped."""
    built = SCENARIOS["codex-supervise-prompt-skills"].build(tmp_path)
    return lambda prompt: (dataclasses.replace(built.spec, prompt=prompt), built.host)


@pytest.mark.parametrize("backend", [DockerBackend(), SmolmachinesBackend()],
                         ids=lambda b: b.name)
@pytest.mark.parametrize("prompt", SHORT)
def test_a_short_prompt_inside_other_tokens_is_not_a_leak(backend, prompt, case):
    with _recorded(backend, case(prompt)) as rec:
        assert rec.error is None, rec.describe_error()
        again = lambda spec: _record_again(backend, rec, spec)  # noqa: E731
        if prompt in ("0", "e", "/", "node"):  # inside 127.0.0.1, paths, /home/node
            assert prompt_on_argv(rec, prompt), "the case no longer exercises the old false FAIL"
        assert prompt_on_argv(rec, prompt, again) == []
        check_codex_prompt(rec, again)


@pytest.mark.parametrize("prompt", [*SHORT, "be brief", "línea 1\nline 2"])
def test_a_prompt_on_codex_argv_fails_however_short(prompt, case):
    backend = CodexShortPromptOnArgv()
    with _recorded(backend, case(prompt)) as rec:
        again = lambda spec: _record_again(backend, rec, spec)  # noqa: E731
        assert prompt.strip() in prompt_on_argv(rec, prompt.strip(), again)
        with pytest.raises(AssertionError, match="the prompt text is on an argv"):
            check_codex_prompt(rec, again)
