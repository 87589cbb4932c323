"""Invariant properties for EXEC-USER, EXEC-RESUME."""

from __future__ import annotations

from hypothesis import given

from ... import strategies as bst
from ...markers import clause
from ...recording import contains_seq
from ...resume_wrap import NoAgentBinary, unwrap, wrap
from .support import (
    _LAUNCH,
    _agent_index,
    _fit,
    _guest_commands,
    _launched,
    _recorded,
    _show,
    _node_problem,
)


class ExecInvariants:
    """EXEC-USER, EXEC-RESUME."""

    # -- EXEC-USER / EXEC-RESUME -------------------------------------------------------

    @clause("EXEC-USER", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_agent_and_user_state_run_as_node(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, spec.agent)
                assert i >= 0, f"agent_argv(tty={tty}) has no {spec.agent} binary: {_show(argv)}"
                why = _node_problem(argv, i)
                assert why is None, (
                    f"agent_argv(tty={tty}) runs {spec.agent} wrongly: {why}: {_show(argv)}")
            for argv, start in _guest_commands(rec):
                cmd = argv[start:]
                hits = [at for at in (contains_seq(cmd, ["git", "config", "--global"]),
                                      contains_seq(cmd, ["mcp", "add"])) if at >= 0]
                if hits:
                    why = _node_problem(argv, start + min(hits))
                    assert why is None, f"user-state command runs wrongly: {why}: {_show(argv)}"

    @clause("EXEC-RESUME")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_resume_wrap_keeps_user_switch(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, spec.agent)
                assert i >= 0, f"agent_argv(tty={tty}) has no {spec.agent} binary: {_show(argv)}"
                # The suite's own wrap (conformance.resume_wrap), written from
                # the clause: never the reference's code as the oracle.
                try:
                    w = wrap(argv, spec.agent)
                except NoAgentBinary as exc:
                    raise AssertionError(f"the resume wrap cannot find the agent in "
                                         f"agent_argv(tty={tty}): {exc}") from None
                assert w.at == i and w.prefix == tuple(argv[:i]), (
                    f"the resume wrap would cut agent_argv(tty={tty}) elsewhere than at "
                    f"{spec.agent}: {_show(argv)}")
                again, fresh = unwrap(w.argv[-1])
                assert fresh == list(argv[i:]) and again == list(w.resume), (
                    f"the wrapped shell would not run the agent tail as given: {_show(w.argv)}")
                why = _node_problem(w.argv, i)
                assert why is None, (f"after the resume wrap, {_show(w.argv[i:i + 2])} runs "
                                     f"wrongly: {why}: {_show(w.argv)}")
