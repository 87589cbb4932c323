"""Invariant properties for PROV-CODEX-PROMPT, PROV-CODEX-SKILLS, PROV-CODEX-MCP.

Generated codex specs (any prompt text, any skill names, supervise on or off,
routed or not) are launched with a recording runner and read by the same
checks as the snapshot tier (`conformance.tiers.snapshots.codex`): the
prompt in ~/.codex/AGENTS.md, skills in ~/.agents/skills, supervise through
`codex mcp add --url` as node, and never Claude's places.
"""

from __future__ import annotations

from hypothesis import given

from ... import strategies as bst
from ...markers import clause
from ...outcomes import not_supported
from ..snapshots.codex import check_codex_mcp, check_codex_prompt, check_codex_skills
from ..snapshots.mcp import McpSnapshots
from .support import _LAUNCH, _fit, _launched, _record_again, _recorded


def _codex_case(backend, case):
    """The clause's capability (codex) gates the test at collection; `_fit`
    cuts supervise when the backend does not declare it."""
    return _fit(backend, case)


class CodexInvariants:
    """PROV-CODEX-PROMPT, PROV-CODEX-SKILLS, PROV-CODEX-MCP."""

    @clause("PROV-CODEX-PROMPT", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="codex", max_routes=1, max_upstreams=1))
    def test_codex_prompt_where_codex_reads_it(self, backend, case):
        case = _codex_case(backend, case)
        with _recorded(backend, case) as rec:
            _launched(rec)
            check_codex_prompt(rec, again=lambda spec: _record_again(backend, rec, spec))

    @clause("PROV-CODEX-SKILLS", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="codex", max_routes=1, max_upstreams=1))
    def test_codex_skills_where_codex_reads_them(self, backend, case):
        case = _codex_case(backend, case)
        with _recorded(backend, case) as rec:
            _launched(rec)
            check_codex_skills(rec)

    @clause("PROV-CODEX-MCP", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="codex", supervise=True, max_routes=1, max_upstreams=1))
    def test_codex_mcp_registered_for_node(self, backend, case):
        case = _codex_case(backend, case)
        if not case[0].supervise:
            not_supported("the backend does not declare 'supervise'")
        with _recorded(backend, case) as rec:
            _launched(rec)
            check_codex_mcp(rec, McpSnapshots._supervise_addresses(rec))
