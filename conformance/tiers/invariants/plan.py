"""Invariant properties for PLAN-PURE, PLAN-HOP, PLAN-DAEMONS, LAUNCH-PACK-IN-LAUNCH, LAUNCH-MISSING-TOKEN."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from hypothesis import given

from bottle_api.plan import to_json
from bottle_api.spec import SpecError, parse_spec

from ... import background, redaction
from ... import strategies as bst
from ...markers import clause
from ...recording import created_resource, prog, record
from .facts import _STARTING_WORDS, BUNDLE_ENTRY, PIPELOCK_PORT, _Loader
from .purity import (
    _ARTIFACT_SUFFIXES,
    ExternalCall,
    _decoy_environ,
    _differing,
    _plain_data_problems,
    no_external_calls,
)
from ...capabilities import parse_capabilities
from ...scenarios import SCENARIOS
from .purity import reimported
from .support import (
    _LAUNCH,
    _PLAN,
    _budget,
    _expected_daemons,
    _fit,
    _launched,
    _recorded,
    _routed,
    _scratch,
    _show,
)
from .topology import _daemons_in


_PURE_CODEX = _budget(0.25)  # codex forwarding credentials: a plan property


class PlanInvariants:
    """PLAN-PURE, PLAN-HOP, PLAN-DAEMONS, LAUNCH-PACK-IN-LAUNCH, LAUNCH-MISSING-TOKEN."""

    # -- PLAN-PURE ------------------------------------------------------------------

    @clause("PLAN-PURE")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_prepare_is_pure_and_deterministic(self, backend, case):
        """No process, socket, DNS, file write or runner while preparing, and
        equal inputs give equal plans whatever the process env holds."""
        _check_pure(backend, case)

    @clause("PLAN-PURE")
    @_PURE_CODEX
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True,
                                 missing_tokens=None, credentials=None))
    def test_prepare_is_pure_forwarding_codex_credentials(self, backend, case):
        """The same, for a codex bottle forwarding the host's sign-in: the
        case that would read ~/.codex/auth.json behind the HostContext's
        back, drawn under every profile (ci too)."""
        _check_pure(backend, case)

    @clause("PLAN-PURE")
    def test_prepare_is_pure_when_imported_under_decoys(self, backend, tmp_path):
        """The backend's own modules, imported afresh while the decoy
        environment and HOME are planted, prepare the plans the already
        imported backend prepares: nothing read from the environment at
        import time (a module-level ``os.environ`` read) reaches a plan."""
        caps = set(parse_capabilities(getattr(backend, "capabilities", ())))
        cases = [(s.name, s.build(tmp_path / s.name)) for s in SCENARIOS.values()
                 if s.needs <= caps]
        names = {r.token_env: "" for _, inputs in cases for r in inputs.spec.routes}
        with _decoy_environ(names, backend) as decoys:  # one fresh import for every scenario
            want = [to_json(backend.prepare(i.spec, i.host)) for _, i in cases]
            # sys.modules is the process's: no background launch may import meanwhile
            with background.paused(), reimported(backend) as fresh:
                got = [to_json(fresh.prepare(i.spec, i.host)) for _, i in cases]
        leaked = redaction.Registry()
        leaked.plant(*decoys)
        checked = 0
        for (name, _), w, g in zip(cases, want, got):
            found = leaked.find(g)
            assert not found, (
                f"scenario {name!r}: the backend imported while decoy values were in "
                f"the process env and HOME puts {found} of them in its plan: one of its modules "
                "reads the environment when it is imported")
            assert g == w, (
                f"scenario {name!r}: the backend imported afresh under a decoy "
                "environment prepares another plan than the one imported before: a module "
                "reads the environment at import time. Differing: "
                + "; ".join(_json_diff(w, g)[:4]))
            checked += 1
        assert checked, "no scenario fits the backend's capabilities"

    # -- PLAN-HOP / PLAN-DAEMONS --------------------------------------------------------

    @clause("PLAN-HOP")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_first_hop_follows_routes(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        want = "egress" if _routed(spec) else "pipelock"
        assert plan.first_hop == want, (
            f"first_hop is {plan.first_hop!r}, expected {want!r} ({len(spec.routes)} declared "
            f"routes, forward_host_credentials={spec.forward_host_credentials})")
        up = urlsplit(plan.egress.upstream_proxy)
        assert up.scheme == "http" and up.port == PIPELOCK_PORT, (
            f"egress upstream_proxy {plan.egress.upstream_proxy!r} is not pipelock "
            f"(http://<pipelock>:{PIPELOCK_PORT})")
        routes_file = yaml.load(plan.egress.routes_yaml, Loader=_Loader)  # noqa: S506
        assert routes_file.get("upstream_proxy") == plan.egress.upstream_proxy, (
            f"egress-routes.yaml upstream_proxy {routes_file.get('upstream_proxy')!r} differs "
            f"from the plan's {plan.egress.upstream_proxy!r}")

    @clause("PLAN-DAEMONS")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_daemons_follow_the_spec(self, backend, case):
        """The plan's daemons, and the daemons launch starts: the seed's bundle
        idled because the plan listed daemons but launch passed none."""
        case = _fit(backend, case)
        spec = case[0]
        want = _expected_daemons(spec)
        with _recorded(backend, case) as rec:
            _launched(rec)
            planned = list(rec.plan.daemons)
            started: set[str] = set()
            for argv in rec.runs("launch"):
                started |= _daemons_in(argv)
        assert sorted(planned) == sorted(want), (
            f"plan.daemons is {planned}, expected {want} ({len(spec.upstreams)} upstreams, "
            f"supervise={spec.supervise})")
        assert started == set(want), (
            f"launch started bundle daemons {sorted(started)} (via `{BUNDLE_ENTRY} "
            f"<daemon>[,...]`), expected {sorted(want)}")

    # -- LAUNCH-PACK-IN-LAUNCH -------------------------------------------------------

    @clause("LAUNCH-PACK-IN-LAUNCH")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_holds_only_image_references(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        with no_external_calls(backend) as seen:
            try:
                plan = backend.prepare(spec, host)
            except ExternalCall:
                plan = None
        assert not seen, f"prepare() ran or wrote something (a build or pack?): {seen}"
        problems: list[str] = []
        _plain_data_problems(plan, "plan", problems)
        assert not problems, "the plan holds more than plain data: " + "; ".join(problems[:5])
        for f in dataclasses.fields(plan):
            if "image" in f.name or "artifact" in f.name:
                value = getattr(plan, f.name)
                assert isinstance(value, str) and value, f"plan.{f.name} is {value!r}, not an image reference"
                assert not value.endswith(_ARTIFACT_SUFFIXES), (
                    f"plan.{f.name} = {value!r} names a built artifact, not an image reference")
        if spec.image:
            assert plan.agent_image_ref == spec.image, (
                f"agent_image_ref {plan.agent_image_ref!r} is not the spec's image {spec.image!r}")

    # -- LAUNCH-MISSING-TOKEN -------------------------------------------------------------

    @clause("LAUNCH-MISSING-TOKEN")
    @_LAUNCH
    @given(case=bst.bottle_cases(routed=True, missing_tokens=True, credentials=None,
                                 skills=False, cwd=False, max_upstreams=2))
    def test_missing_token_refused_before_anything_starts(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        if not spec.routes:  # forward_host_credentials alone: make its file the missing input
            host = dataclasses.replace(host, home_files={})
        source = "generated-bottle.yaml"
        text = bst.spec_yaml(spec)
        parsed = parse_spec(text.text, source=source)
        assert parsed == bst.as_loaded(spec), "strategy bug: the generated spec does not round-trip"
        missing = [f"egress.routes[{i}].token_env" for i, r in enumerate(parsed.routes)
                   if not host.env.get(r.token_env)]
        if parsed.forward_host_credentials and not host.home_files:
            missing.append("forward_host_credentials")
        with _scratch() as tmp:
            state_root = Path(tmp) / "state"
            host = dataclasses.replace(host, state_root=state_root)
            rec = record(backend, (parsed, host), tmp=Path(tmp))
            assert isinstance(rec.error, SpecError), (
                f"launch with unset token(s) {missing} did not raise SpecError: "
                f"{rec.describe_error()}")
            err, message = rec.error, str(rec.error)
            assert err.key in missing and err.key in message, (
                f"the error names key {err.key!r}, expected one of {missing}: {message!r}")
            line = text.lines[err.key]
            assert err.file == source and source in message, (
                f"the error does not name the spec file {source}: {message!r}")
            assert err.line == line and str(line) in message, (
                f"the error names line {err.line}, but {err.key} is on line {line}: {message!r}")
            started = [a for a in rec.runs() if created_resource(a) is not None
                       or prog(a) == "openssl" or set(a[1:4]) & _STARTING_WORDS]
            assert not started, (
                f"launch ran {len(started)} command(s) that create or start something before "
                f"refusing, e.g. {rec.normalise(_show(started[0]))}")
            assert not state_root.exists(), (
                f"launch created {state_root} (the state dir) before refusing")



def _json_diff(a: str, b: str) -> list[str]:
    import json

    x, y = json.loads(a), json.loads(b)
    if not (isinstance(x, dict) and isinstance(y, dict)):
        return ["the plans differ"]
    return [f"{k}: {str(x.get(k))[:80]!r} vs {str(y.get(k))[:80]!r}"
            for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)] or ["the plans differ"]


def _check_pure(backend, case) -> None:
    case = _fit(backend, case)
    spec, host = case
    with no_external_calls(backend) as seen:
        try:
            first = backend.prepare(spec, host)
        except ExternalCall:
            first = None  # recorded in ``seen``
    assert not seen, f"prepare() reached outside the process: {seen}"
    with _decoy_environ({r.token_env: "" for r in spec.routes}, backend) as decoys:
        second = backend.prepare(spec, host)
    leaked = redaction.Registry()
    leaked.plant(*decoys)
    for what, text in (("to_json(plan)", to_json(second)), ("repr(plan)", repr(second))):
        found = leaked.find(text)
        assert not found, (
            f"{what} holds {found} decoy value(s) (or an encoding of one) that were only in "
            "the process environment or in a decoy HOME (~/.codex/auth.json, "
            "~/.claude/.credentials.json, ...): prepare() read the host behind the "
            "HostContext's back")
    assert first == second, (
        "two prepare() calls on equal inputs (the second with decoy values in the "
        f"process env) gave different plans; differing fields: {_differing(first, second)}")
    assert to_json(first) == to_json(second), "equal plans serialise differently"

