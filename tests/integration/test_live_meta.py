"""Meta-tests: each live clause can FAIL. A nested pytest runs the live tier
against deliberately broken docker backends (`broken_live`), one test each,
and the clause aimed at each bug must come out FAILED in that backend's
report, never PASSED, ERROR or NOT_SUPPORTED.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bottle_api.runner import SubprocessRunner
from conformance.live.engine import Engine

HERE = Path(__file__).parent

# (class in broken_live, test selection, clause that must FAIL, backend name)
CASES = [
    ("TestBypass", "test_no_way_out_but_the_first_hop and unrouted", "LIVE-BYPASS",
     "broken-bypass"),
    ("TestWrongToken", "test_real_token_only_upstream", "LIVE-AUTH", "broken-token"),
    ("TestNoTrust", "test_tls_validates_with_provisioned_trust and unrouted", "LIVE-CA-TRUST",
     "broken-trust"),
    ("TestRootAgent", "test_live_agent_and_user_state_run_as_node", "EXEC-USER", "broken-root"),
    ("TestLeaky", "test_teardown_leaves_nothing and close", "LIVE-TEARDOWN", "broken-leak"),
    ("TestHostReach", "test_host_services_unreachable and unrouted", "LIVE-HOST",
     "broken-hostreach"),
    ("TestHostReach", "test_guest_routes_only_its_own_subnets and unrouted", "LIVE-ROUTES",
     "broken-hostreach"),
    ("TestEngineSocket", "test_no_engine_socket_no_host_mounts and unrouted", "LIVE-CONFINE",
     "broken-socket"),
    ("TestEncodedToken", "test_real_token_only_upstream", "LIVE-AUTH", "broken-encoded-token"),
    ("TestPublishWide", "test_published_ports_bind_loopback and routed", "PORT-LOOPBACK",
     "broken-publish"),
    ("TestLabelKeyTeardown", "test_teardown_leaves_nothing and close", "LIVE-TEARDOWN",
     "broken-labelkey"),
    ("TestBalancedPipelock", "test_pipelock_answers_and_denies and unrouted", "LIVE-PIPELOCK",
     "broken-balanced"),
    # issue 14 item 5: a codex bottle provisioned the Claude way
    ("TestCodexClaudeWay", "test_codex_prompt_file", "PROV-CODEX-PROMPT",
     "broken-codex-claude-way"),
    ("TestCodexClaudeWay", "test_codex_skill_files", "PROV-CODEX-SKILLS",
     "broken-codex-claude-way"),
    ("TestCodexClaudeWay", "test_codex_supervise_registered", "PROV-CODEX-MCP",
     "broken-codex-claude-way"),


    # issue 15
    ("TestEgressConnectOnly", "test_token_only_to_the_route_host_whatever_the_names",
     "LIVE-EGRESS-ONE-NAME", "broken-egress-connect-only"),
    ("TestPipelockConnectOnly", "test_no_fronting_through_an_allowed_host and unrouted",
     "LIVE-NO-FRONTING", "broken-pipelock-connect-only"),
    ("TestEgressStripsDot", "test_route_host_spellings_neither_leak_nor_reach_dlp",
     "LIVE-HOST-CANON", "broken-egress-dot"),
    ("TestOnboarding", "test_no_host_outside_the_allowlist_answers and unrouted",
     "LIVE-ALLOWLIST-ONLY", "broken-onboarding"),
]

# --- issue 20: the live tier's blind spots. Each also names the reason its
# clause must give (substrings of the FAILED result's reason).
REASONS = {
    ("LIVE-DNS", "broken-dns"): ("a lookup left the guest", "canary was asked"),
    ("LIVE-ENDPOINTS", "broken-metrics-port"): ("nothing declares", "9090"),
    ("LIVE-AUTH", "broken-helper-token"): ("the real token is inside the guest", "/environ"),
    ("LIVE-CA-KEY", "broken-ca-key"): ("a private key of the bottle's CA is in the guest",
                                       "/home/node/.config/"),
    ("LIVE-APART", "broken-shared-net"): ("the two bottles reach each other",),
}
CASES += [
    ("TestDnsForwarder", "test_dns_answers_nothing_outside and unrouted", "LIVE-DNS",
     "broken-dns"),
    ("TestMetricsPort", "test_guest_reaches_exactly_declared_endpoints and unrouted",
     "LIVE-ENDPOINTS", "broken-metrics-port"),
    ("TestHelperToken", "test_real_token_only_upstream", "LIVE-AUTH", "broken-helper-token"),
    ("TestCaKeyCopy", "test_no_ca_private_key_in_guest and unrouted", "LIVE-CA-KEY",
     "broken-ca-key"),
    ("TestSharedNetwork", "test_bottles_cannot_reach_each_other", "LIVE-APART",
     "broken-shared-net"),


    # issue 16
    ("TestDefaultCaps", "test_host_services_unreachable and unrouted", "LIVE-HOST",
     "broken-default-caps"),
    ("TestDefaultCaps", "test_guest_privileges_as_declared", "LIVE-PRIVS",
     "broken-default-caps"),
    ("TestIPv6On", "test_host_services_unreachable and unrouted", "LIVE-HOST",
     "broken-ipv6-on"),
    ("TestWorkdirRootExec", "test_root_execs_ignore_planted_modules", "LIVE-ROOT-EXEC-CLEAN",
     "broken-root-workdir"),
    ("TestNoLimits", "test_guest_privileges_as_declared", "LIVE-PRIVS", "broken-no-limits"),
]
# Issue 14: a smolmachines guest given a socket beyond its daemons' (where a
# smolvm, real or the stand-in `nox -s integration` puts on PATH, answers).
if shutil.which("smolvm"):
    CASES.append(("TestSmolEngineSocket", "test_no_engine_socket_no_host_mounts and unrouted",
                  "LIVE-CONFINE", "broken-smol-socket"))


def _smolvm_standin() -> bool:
    if not shutil.which("smolvm"):
        return False
    out = subprocess.run(["smolvm", "--version"], capture_output=True, text=True, timeout=30)
    return "bottle-conformance stand-in" in out.stdout


# Issue 14: on the smolvm stand-in a guest given smolvm networking (the old
# --net --allow-cidr design) cannot be run: NOT_SUPPORTED naming the stand-in,
# never PASSED (the stand-in's machines have no network to probe).
NOT_SUPPORTED_CASES = ([("TestSmolNet", "test_exec_echo_round_trips", "LIVE-SMOKE",
                         "broken-smol-net")] if _smolvm_standin() else [])


# --- issue 15 (second pass)
CASES += [
    ("TestPipelockNoSsrf", "test_allowlisted_host_on_an_internal_address_is_refused and unrouted",
     "LIVE-SSRF", "broken-pipelock-no-ssrf"),
]

# --- ca-ec (found under issue 19): an RSA bottle CA stops pipelock (certgen.go LoadCA);
# the launch fails at once naming it (wait_for_daemons reads the exited daemon's line)
CASES += [
    ("TestRsaCa", "test_tls_validates_with_provisioned_trust and unrouted", "LIVE-CA-TRUST",
     "broken-rsa-ca"),
]
REASONS[("LIVE-CA-TRUST", "broken-rsa-ca")] = (
    "pipelock exited", "CA key must be ECDSA, got *rsa.PrivateKey")


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """One nested session over every case; yields {backend: report}."""
    tmp = tmp_path_factory.mktemp("meta")
    tag = "meta" + secrets.token_hex(3)
    engine = Engine(SubprocessRunner())
    selection = " or ".join(f"({cls} and {sel})"
                            for cls, sel, _, _ in CASES + NOT_SUPPORTED_CASES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTTLE_REPORT", "PYTEST_"))}
    env["BOTTLE_LIVE_TAG"] = tag
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", str(HERE / "broken_live.py"), "-k", selection,
             "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--basetemp", str(tmp / "t"),
             "--bottle-report", str(tmp / "r.json"), "-W", "ignore::DeprecationWarning"],
            env=env, capture_output=True, text=True, timeout=1200, cwd=HERE.parent.parent)
        reports = {}
        for f in tmp.glob("r-*.json"):
            data = json.loads(f.read_text())
            reports[data["backend"]] = {r["clause_id"]: r for r in data["results"]}
        yield run, reports
    finally:
        # A broken teardown leaks by design: remove whatever the nested run named.
        for o in engine.snapshot().mentioning(tag):
            engine.run(*(("rm", "-f") if o.kind == "container" else ("network", "rm")), o.id,
                       check=False)


@pytest.mark.parametrize("cls,selection,clause_id,backend", CASES,
                         ids=[f"{c[2]}-{c[3]}" for c in CASES])
def test_live_clause_fails_on_its_bug(nested, cls, selection, clause_id, backend):
    run, reports = nested
    assert backend in reports, (f"no report for {backend}; nested run:\n"
                                f"{run.stdout[-3000:]}\n{run.stderr[-1000:]}")
    result = reports[backend].get(clause_id)
    assert result is not None, f"{clause_id} did not run against {backend}: {reports[backend]}"
    assert result["state"] == "FAILED", (
        f"{clause_id} against {backend} ({cls}) was {result['state']}, not FAILED: "
        f"{result.get('reason')}")
    why = REASONS.get((clause_id, backend), ())
    assert all(w in (result.get("reason") or "") for w in why), (
        f"{clause_id} against {backend} FAILED for another reason than {why!r}: "
        f"{result.get('reason')}")




@pytest.mark.parametrize("cls,selection,clause_id,backend", NOT_SUPPORTED_CASES,
                         ids=[f"{c[2]}-{c[3]}" for c in NOT_SUPPORTED_CASES])
def test_standin_reports_unmodelled_networking_not_supported(nested, cls, selection, clause_id,
                                                             backend):
    run, reports = nested
    assert backend in reports, f"no report for {backend}; nested run:\n{run.stdout[-3000:]}"
    result = reports[backend].get(clause_id)
    assert result is not None and result["state"] == "NOT_SUPPORTED", result
    assert "not modelled by the stand-in" in result.get("reason", ""), result

