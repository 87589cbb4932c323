"""Snapshot-tier checks added by issue 16 (a static clause per contract gap):
TEARDOWN-STATE, PROV-WORKDIR, PROV-CRED-OWNER, PROV-CA-KEYS, and the
old-smolvm refusal of SMOLVM-VERSION-FIRST."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from bottle_api.conventions import (
    CLAUDE_CREDENTIALS_GUEST,
    CODEX_AUTH_GUEST,
    EGRESS,
    EGRESS_CA_CERT,
    EGRESS_CA_KEY,
    NODE_HOME,
    PIPELOCK,
    PIPELOCK_CA_CERT,
    PIPELOCK_CA_KEY,
)
from bottle_api.runner import RecordingRunner

from ...argv import ArgvError, UnknownTool
from ...argv import topology as argv_topology
from ...argv.framing import agent_exec
from ...outcomes import not_supported
from ...recording import (
    RunawayLaunch,
    created_resource,
    guest_target,
    is_guest_copy,
    is_guest_exec,
    mount_pairs,
    prog,
    reply_when,
)
from ...scenarios import Scenario, scenario_params
from .readers import as_node, joined, launch_failed, launched, show

# The CA key path and the cert path of each daemon's CA (bundle interface).
_KEY_PATHS = {EGRESS_CA_KEY: (EGRESS, EGRESS_CA_CERT), PIPELOCK_CA_KEY: (PIPELOCK, PIPELOCK_CA_CERT)}
_PLACEHOLDERS = (CODEX_AUTH_GUEST, CLAUDE_CREDENTIALS_GUEST)
# smolvm releases before the --from egress fix (f8a6fa62, v1.8.0) that a
# launch must refuse; "1.0.2" is the oldest with today's create grammar.
OLD_SMOLVM = ("1.7.2", "1.0.2")


def _generated_keys(runs) -> dict[str, str]:
    """CA private key path -> its certificate path, for every key the launch
    generated (``openssl req ... -keyout K -out C``)."""
    out = {}
    for argv in runs:
        if prog(argv) != "openssl" or "-keyout" not in argv:
            continue
        key = argv[argv.index("-keyout") + 1] if argv.index("-keyout") + 1 < len(argv) else None
        cert = argv[argv.index("-out") + 1] if "-out" in argv[:-1] else ""
        if key:
            out[key] = cert
    return out


class GapSnapshots:
    """TEARDOWN-STATE, PROV-WORKDIR, PROV-CRED-OWNER, PROV-CA-KEYS,
    SMOLVM-VERSION-FIRST (refusal)."""

    @pytest.mark.parametrize("scenario", scenario_params("TEARDOWN-STATE"))
    def test_close_removes_the_state_dir(self, backend, scenario: Scenario, bottle_recorder):
        """After a normal close() the plan's state dir is gone."""
        rec = launched(bottle_recorder(scenario))
        state = Path(rec.plan.state_dir)
        assert rec.spans.get("close"), "close() was never reached"
        if state.exists():
            left = sorted(str(p.relative_to(state)) for p in state.rglob("*"))[:8]
            raise AssertionError(
                f"after close() the state dir {rec.normalise(str(state))} is still there "
                f"(holding {left or 'nothing'}); CA keys and configs outlive the bottle")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-WORKDIR"))
    def test_agent_workdir_in_node_home(self, backend, scenario: Scenario, bottle_recorder):
        """The agent exec sets its working directory (-w) to /home/node or below."""
        rec = launched(bottle_recorder(scenario), agent=True)
        for tty, argv in rec.agent_argvs.items():
            try:
                found = agent_exec(argv)
            except (ArgvError, UnknownTool) as exc:
                not_supported(f"the agent exec is not readable: {exc}")
            if found is None:
                not_supported(f"agent_argv(tty={tty}) runs no agent exec the suite reads: "
                              f"{show(rec, argv)}")
            workdir = found.invocation.last("workdir")
            assert workdir, (f"agent_argv(tty={tty}) sets no working directory (-w): the agent "
                             f"starts wherever the guest's default is: {show(rec, argv)}")
            norm = posixpath.normpath(workdir)
            assert norm == NODE_HOME or norm.startswith(NODE_HOME + "/"), (
                f"agent_argv(tty={tty}) runs the agent in {workdir}, outside {NODE_HOME}: "
                f"{show(rec, argv)}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CRED-OWNER"))
    def test_credential_placeholders_node_0600(self, backend, scenario: Scenario,
                                               bottle_recorder):
        """A placeholder placed in the guest ends owned by node, mode 0600."""
        rec = launched(bottle_recorder(scenario))
        runs = [(i, c.argv) for i, c in rec.indexed("launch") if c.kind == "run"]
        expected = {f.path for f in rec.plan.guest_files if f.path in _PLACEHOLDERS}
        for path in _PLACEHOLDERS:
            placed = [(i, a) for i, a in runs if (is_guest_copy(a) or is_guest_exec(a))
                      and any(t.endswith(":" + path) or t == path for t in a)
                      and not re.search(rf"\bch(own|mod)\b[^;&|]*{re.escape(path)}", joined(a))]
            if not placed:
                assert path not in expected, (
                    f"the plan has the placeholder {path}, but no command puts it in the guest")
                continue
            last, how = placed[-1]
            later = [(i, joined(a)) for i, a in runs if i > last]
            chmods = [re.search(rf"\bchmod\s+(\S+)\s+{re.escape(path)}", t) for _, t in later]
            chmods = [m.group(1) for m in chmods if m]
            chowns = [re.search(rf"\bchown\s+(\S+)\s+{re.escape(path)}", t) for _, t in later]
            chowns = [m.group(1).split(":")[0].split(".")[0] for m in chowns if m]
            assert chmods and chmods[-1].lstrip("0") == "600", (
                f"{path} is put in the guest ({show(rec, how)}) but its mode is "
                f"{'set to ' + chmods[-1] if chmods else 'never set'}, not 0600")
            owner = chowns[-1] if chowns else ("node" if is_guest_exec(how) and any(
                as_node(how, k) for k in range(len(how)) if how[k] in ("sh", "cat", "tee",
                                                                       "install")) else None)
            assert owner == "node", (
                f"{path} is put in the guest ({show(rec, how)}) but "
                f"{'chowned to ' + owner if owner else 'never chowned'}, not owned by node")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA-KEYS"))
    def test_ca_keys_only_to_their_daemon(self, backend, scenario: Scenario, bottle_recorder):
        """Each generated CA key is mounted only at its own daemon's key path
        (with its own certificate beside it), in a container running that
        daemon; none reaches the agent guest."""
        rec = launched(bottle_recorder(scenario))
        runs = rec.runs("launch")
        keys = _generated_keys(runs)
        if not keys:
            not_supported("no `openssl req -keyout` in the launch: the suite cannot tell which "
                          "files are CA private keys")
        found = argv_topology.containers(
            runs, [rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs],
            agent_image=rec.plan.agent_image_ref)
        agents = {c.name for c in found.values() if c.is_agent}
        problems = []
        for argv in runs:
            res = created_resource(argv)
            pairs = mount_pairs(argv)
            name = res.name if res is not None else None
            box = found.get(name) if name else None
            for src, dst in pairs:
                for key, cert in keys.items():
                    if src != key and not key.startswith(src.rstrip("/") + "/"):
                        continue
                    where = dst if src == key else posixpath.join(dst, key[len(src):].lstrip("/"))
                    if res is not None and (res.kind == "machine" or name in agents):
                        problems.append(f"CA private key {rec.normalise(key)} is mounted into "
                                        f"the agent guest at {where}: {show(rec, argv)}")
                        continue
                    own = _KEY_PATHS.get(where)
                    if own is None:
                        problems.append(f"CA private key {rec.normalise(key)} is mounted at "
                                        f"{where}, no daemon's key path: {show(rec, argv)}")
                        continue
                    daemon, cert_path = own
                    if box is not None and daemon not in box.daemons:
                        problems.append(f"{daemon}'s CA key path {where} is mounted into "
                                        f"{name}, which runs {sorted(box.daemons) or 'no daemon'}: "
                                        f"{show(rec, argv)}")
                    beside = [s for s, d in pairs if d == cert_path]
                    if beside and cert not in beside:
                        problems.append(f"the key mounted at {where} is not the key of the CA "
                                        f"mounted at {cert_path} (another daemon's key): "
                                        f"{show(rec, argv)}")
            if is_guest_copy(argv) and any(a in keys for a in argv):
                target = guest_target(argv)
                problems.append(f"CA private key copied into guest {target}: {show(rec, argv)}")
        assert not problems, "; ".join(problems[:3])

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-VERSION-FIRST",
                                                         names=("minimal-claude",)))
    @pytest.mark.parametrize("old", OLD_SMOLVM)
    def test_old_smolvm_refused(self, backend, scenario: Scenario, bottle_recorder, old):
        """With `smolvm --version` answering a release before 1.8.0 the launch
        fails and creates no machine."""
        rec0 = launched(bottle_recorder(scenario))
        if not any(prog(a) == "smolvm" for a in rec0.runs("launch")):
            not_supported("the backend runs no smolvm command")

        def older(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: prog(argv) == "smolvm" and "--version" in argv
                       and "machine" not in argv, stdout=f"smolvm {old}\n")

        rec = bottle_recorder(scenario, script=older)
        assert not isinstance(rec.error, RunawayLaunch), rec.describe_error()
        creates = [a for a in rec.runs("launch") if prog(a) == "smolvm"
                   and list(a[1:3]) == ["machine", "create"]]
        assert launch_failed(rec) and not creates, (
            f"smolvm {old} (before 1.8.0 `machine create --from` drops --allow-cidr: open "
            f"egress) was not refused: "
            + ("; ".join(show(rec, a) for a in creates) if creates else rec.describe_error()))
