"""Invariant properties for SECRET-ARGV, SECRET-PLAN."""

from __future__ import annotations

from hypothesis import given

from bottle_api.plan import to_json

from ... import strategies as bst
from ...markers import clause
from ...recording import env_assignments, prog
from .support import _LAUNCH, _PLAN, _fit, _launched, _recorded, _show
from .topology import _flag_values


class SecretInvariants:
    """SECRET-ARGV, SECRET-PLAN."""

    # -- SECRET-ARGV / SECRET-PLAN -------------------------------------------------------

    @clause("SECRET-ARGV")
    @_LAUNCH
    @given(case=bst.bottle_cases())
    def test_no_token_value_on_any_argv(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        secrets = set(bst.secret_values(spec, host))
        with _recorded(backend, case) as rec:
            _launched(rec)
            plan = rec.plan
            secrets |= {v for v in plan.secrets.values() if v}
            slots = set(plan.secrets)
            argvs = rec.all_argvs()
            blob = "\0".join("\0".join(a) for a in argvs)
            for s in secrets:
                if s in blob:
                    where = next(a for a in argvs if any(s in t for t in a))
                    raise AssertionError(f"a token value ({len(s)} chars, starts {s[:6]!r}) is on "
                                         f"argv: {rec.normalise(_show(where))}")
            for call in rec.runner.calls:
                if call.kind != "run":
                    continue
                argv = call.argv
                for name, value in env_assignments(argv):
                    assert name not in slots, (
                        f"token slot {name} is given a value on argv (-e {name}=...), not bare "
                        f"-e {name}: {rec.normalise(_show(argv))}")
                if call.env_names and (prog(argv) in ("docker", "podman", "nerdctl", "smolvm")):
                    named = set(_flag_values(argv, "-e", "--env"))
                    for name in call.env_names:
                        assert name in named, (
                            f"{name} travels in the runner's env but is not named bare "
                            f"(-e {name}) on argv: {rec.normalise(_show(argv))}")
            undelivered = {v for v in plan.secrets.values() if v} - set(rec.runner.secret_values)
            assert not undelivered, (
                f"{len(undelivered)} token(s) of plan.secrets never reached a child through the "
                "runner's env=")

    @clause("SECRET-PLAN")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_repr_and_json_hold_no_secret(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        secrets = set(bst.secret_values(spec, host)) | {v for v in plan.secrets.values() if v}
        for what, text in (("repr(plan)", repr(plan)), ("str(plan)", str(plan)),
                           ("to_json(plan)", to_json(plan))):
            leaked = [s for s in secrets if s in text]
            assert not leaked, (
                f"{what} contains {len(leaked)} secret value(s), e.g. one starting "
                f"{leaked[0][:6]!r}")
