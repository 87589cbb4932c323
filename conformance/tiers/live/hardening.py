"""Live checks of the guest's hardening (issue 16): what its root and node
processes hold against what the backend declares (LIVE-PRIVS), and that no
root exec imports a module node planted (LIVE-ROOT-EXEC-CLEAN). LIVE-HOST's
root and raw-socket half lives with LIVE-HOST (`confinement`)."""

from __future__ import annotations

import secrets

from bottle_api.conventions import FORBIDDEN_CAPS, NODE_HOME, WORKDIR

from ...live import probes
from ...live.harness import TOKEN_BODY, TOKEN_PREFIX
from ...markers import clause
from .support import UNROUTED, _call_hook

CPU_TOLERANCE = 0.01  # CFS quota rounding


class LiveHardening:
    """LIVE-PRIVS, LIVE-ROOT-EXEC-CLEAN."""

    @clause("LIVE-PRIVS")
    @UNROUTED
    def test_guest_privileges_as_declared(self, live, probe_log):
        declared = _call_hook(live.bottle.guest_privileges, "Bottle.guest_privileges()")
        unsafe = []
        if FORBIDDEN_CAPS & declared.root_caps:
            unsafe.append(f"declares forbidden capabilities "
                          f"{sorted(FORBIDDEN_CAPS & declared.root_caps)}")
        if not declared.no_new_privs:
            unsafe.append("declares no NoNewPrivs")
        for what in ("memory_bytes", "pids", "cpus"):
            if getattr(declared, what) is None:
                unsafe.append(f"declares no {what} limit")
        assert not unsafe, f"the backend's guest is not hardened: {'; '.join(unsafe)}"
        root, node = probes.concurrently(
            lambda: probes.privileges(live.bottle, user="root", log=probe_log),
            lambda: probes.privileges(live.bottle, user="node", log=probe_log))
        assert root.uid == 0 and node.uid != 0, (
            f"control failed: exec as root ran as uid {root.uid}, as node as uid {node.uid}")
        want = frozenset(declared.root_caps)
        bad = []
        for who, p in (("root", root), ("node", node)):
            if p.no_new_privs is not declared.no_new_privs:
                bad.append(f"{who}: NoNewPrivs {p.no_new_privs}, declared {declared.no_new_privs}")
            if p.bounding - want:
                bad.append(f"{who}: bounding set holds undeclared {sorted(p.bounding - want)}")
            if p.ambient:
                bad.append(f"{who}: ambient capabilities {sorted(p.ambient)}")
        if root.effective != want:
            bad.append(f"root: effective {sorted(root.effective)}, declared {sorted(want)}")
        if root.bounding != want:
            bad.append(f"root: bounding {sorted(root.bounding)}, declared {sorted(want)}")
        if node.effective or node.permitted:
            bad.append(f"node: holds capabilities {sorted(node.effective | node.permitted)}")
        if root.memory_bytes != declared.memory_bytes:
            bad.append(f"memory limit {root.memory_bytes}, declared {declared.memory_bytes}")
        if root.pids != declared.pids:
            bad.append(f"pids limit {root.pids}, declared {declared.pids}")
        if root.cpus is None or abs(root.cpus - declared.cpus) > CPU_TOLERANCE * declared.cpus:
            bad.append(f"CPU quota {root.cpus}, declared {declared.cpus}")
        assert not bad, f"the guest's privileges differ from the declaration: {'; '.join(bad)}"

    @clause("LIVE-ROOT-EXEC-CLEAN")
    @UNROUTED
    def test_root_execs_ignore_planted_modules(self, live, probe_log):
        marker = "bottle-live-plant-" + secrets.token_hex(6)
        bottle = live.bottle
        paths = probes.plant_modules(bottle, [WORKDIR, NODE_HOME], marker, log=probe_log)
        try:
            assert any(p.startswith(WORKDIR + "/") for p in paths), (
                f"control failed: node could not plant modules in {WORKDIR}: {paths}")
            ctl = bottle.exec(["sh", "-c", f"cd {WORKDIR} && python3 -c 'import json'"])
            seen = bottle.exec(["sh", "-c", f"ls /tmp | grep -c -e '^{marker}-json-' || true"])
            assert ctl.ok and seen.stdout.strip() not in ("", "0"), (
                f"control failed: node's own python3 in {WORKDIR} did not import the planted "
                f"json ({(ctl.stdout + ctl.stderr).strip()[-300:]})")
            # A root exec as provisioning or an operator runs it: plain python3.
            plain = bottle.exec(["python3", "-c", "import json, os; print(os.getcwd())"],
                                user="root", timeout=30)
            shell = bottle.exec(["sh", "-c", "python3 -c 'import json' && pwd"], user="root",
                                timeout=30)
            # The suite's own root probes.
            probes.scan(bottle, TOKEN_PREFIX, TOKEN_BODY, roots=[NODE_HOME], log=probe_log,
                        changed_within=60.0)
            probes.privileges(bottle, user="root", log=probe_log)
            ran = probes.root_markers(bottle, marker, log=probe_log)
            assert not ran, (
                f"a root exec imported module(s) node planted in {WORKDIR}, {NODE_HOME} or "
                f"node's user site: {ran} (root execs start in "
                f"{(plain.stdout.strip() or shell.stdout.strip() or '?')!r})")
        finally:
            probes.unplant_modules(bottle, paths, marker, log=probe_log)
