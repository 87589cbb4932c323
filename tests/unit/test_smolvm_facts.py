"""One test per smolvm fact in ../shared/facts/real-tools.md, each citing
where it is in smolvm's source (smol-machines/smolvm; read at the tags named).

Each fact is checked against the test-only stand-in (tests/standins/smolvm,
run here on a fake ``docker`` that only records, so no engine is needed)
and/or against the reference backend's recorded conversation.

Where the facts file was wrong, the test says so: ``machine exec`` takes
the machine as ``--name`` only (no ``-n``), at 0.8.2, 1.8.0 and 1.9.3.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bottle_api.host import HostContext
from bottle_api.runner import RecordingRunner
from bottle_api.spec import BottleSpec
from bottle_ref import tar_pipe
from bottle_ref.backends.smolmachines import (
    MIN_SMOLVM,
    LaunchError,
    SmolmachinesBackend,
    SmolvmChannel,
    artifact_path,
    parse_smolvm_version,
)

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "standins" / "smolvm" / "smolvm"
IMAGE_HEX = "ab" * 32

# Its interpreter is this one, not `#!/usr/bin/env python3`: where python3 on
# PATH is a shim (pyenv: a bash script, ~0.15 s CPU a call) that cost more
# than the rest of the test, at every one of the stand-in's docker calls.
FAKE_DOCKER = r'''#!{python}
import json, os, sys
state = os.environ["FAKE_DOCKER_STATE"]
os.makedirs(state, exist_ok=True)
argv = sys.argv[1:]
data = sys.stdin.buffer.read() if argv[:1] == ["exec"] and "-i" in argv else b""
with open(os.path.join(state, "log"), "a") as fh:
    fh.write(json.dumps({"argv": argv, "stdin": len(data)}) + "\n")
images = [i for i in os.environ.get("FAKE_DOCKER_IMAGES", "").split(",") if i]
def running(name):
    return os.path.exists(os.path.join(state, "c-" + name))
if argv[:1] == ["inspect"]:
    name = argv[-1]
    if not running(name):
        print("Error: No such object: " + name, file=sys.stderr); sys.exit(1)
    print("true"); sys.exit(0)
if argv[:2] == ["image", "inspect"]:
    ref = argv[-1]
    if ref not in images:
        print("Error: No such image: " + ref, file=sys.stderr); sys.exit(1)
    if "--format" in argv:
        print("sha256:" + "ab" * 32)
    else:
        print(json.dumps([{"Id": "sha256:" + "ab" * 32, "Config": {"WorkingDir": "/home/node/work"}}]))
    sys.exit(0)
if argv[:1] == ["run"]:
    name = argv[argv.index("--name") + 1]
    open(os.path.join(state, "c-" + name), "w").close(); print("cid"); sys.exit(0)
if argv[:2] == ["rm", "-f"]:
    p = os.path.join(state, "c-" + argv[2])
    if os.path.exists(p): os.unlink(p)
    sys.exit(0)
sys.exit(0)
'''


class Smolvm:
    """Runs the stand-in against a recording fake docker."""

    def __init__(self, tmp: Path, version: str = "1.9.3"):
        self.tmp = tmp
        bin_dir = tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        docker = bin_dir / "docker"
        docker.write_text(FAKE_DOCKER.replace("{python}", sys.executable, 1))
        docker.chmod(0o755)
        self.state = tmp / "docker-state"
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DOCKER_STATE": str(self.state),
            "FAKE_DOCKER_IMAGES": f"sha256:{IMAGE_HEX},claude-bottle:latest",
            "SMOLVM_STANDIN_HOME": str(tmp / "smolvm-home"),
            "SMOLVM_STANDIN_VERSION": version,
        }

    def __call__(self, *argv: str, input: bytes | None = None, **env: str):
        return subprocess.run([sys.executable, str(STANDIN), *argv], input=input,
                              capture_output=True, env={**self.env, **env}, timeout=60)

    def record(self, name: str) -> dict:
        return json.loads((self.tmp / "smolvm-home" / "machines" / f"{name}.json").read_text())

    def docker_calls(self) -> list[list[str]]:
        log = self.state / "log"
        if not log.exists():
            return []
        return [json.loads(ln)["argv"] for ln in log.read_text().splitlines()]

    def archive(self) -> Path:
        """A minimal `docker save` archive: manifest.json naming the config."""
        path = self.tmp / "agent.tar"
        manifest = json.dumps([{"Config": f"blobs/sha256/{IMAGE_HEX}",
                                "RepoTags": ["claude-bottle:latest"], "Layers": []}]).encode()
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
        return path


@pytest.fixture
def smolvm(tmp_path):
    return Smolvm(tmp_path)


def err(result) -> str:
    return result.stderr.decode(errors="replace")


# -- fact: pack create -o OUT writes a stub at OUT, the artifact at OUT.smolmachine,
#    and --from needs that sidecar (SMOLPACK footer), not the stub.
#    0.8.2 crates/smolvm-pack/src/packer.rs (~94, ~106, ~461 sidecar_path_for);
#    1.9.3 src/cli/pack.rs (~189-203 "--output names the EXECUTABLE stub");
#    1.9.3 crates/smolvm-pack/src/format.rs (MAGIC = b"SMOLPACK", FOOTER_SIZE 64).

def test_pack_output_is_the_stub_and_from_needs_the_sidecar(smolvm, tmp_path):
    out = tmp_path / "agent"
    made = smolvm("pack", "create", "-I", "claude-bottle:latest", "-o", str(out),
                  SMOLVM_STANDIN_REGISTRY="claude-bottle:latest")
    assert made.returncode == 0, err(made)
    sidecar = Path(f"{out}.smolmachine")
    assert os.access(out, os.X_OK) and sidecar.is_file()
    footer = sidecar.read_bytes()[-64:]
    assert footer[:8] == b"SMOLPACK" and struct.unpack_from("<I", footer, 8)[0] == 1
    stub = smolvm("machine", "create", "--name", "m1", "--from", str(out))
    assert stub.returncode == 1 and "invalid magic" in err(stub)
    ok = smolvm("machine", "create", "--name", "m1", "--from", str(sidecar))
    assert ok.returncode == 0, err(ok)
    refused = smolvm("pack", "create", "-I", "claude-bottle:latest", "-o", f"{out}.smolmachine",
                     SMOLVM_STANDIN_REGISTRY="claude-bottle:latest")
    assert refused.returncode == 1 and "names the executable stub" in err(refused)


def test_backend_never_hands_a_pack_or_stub_to_from(tmp_path):
    plan, runner = _launched(tmp_path)
    assert not [a for a in runner.argvs if a[:2] == ("smolvm", "pack")]
    assert not [a for a in runner.argvs if "--from" in a]


# -- fact: pack create -I REF pulls REF from a registry; a tag only in the local
#    engine is not found. 0.8.2 src/cli/pack.rs (~282 pull_with_progress);
#    1.9.3 src/cli/pack.rs (~339 pull_with_progress, no local-source branch).

def test_pack_create_pulls_from_a_registry_only(smolvm, tmp_path):
    r = smolvm("pack", "create", "-I", "claude-bottle:latest", "-o", str(tmp_path / "x"))
    assert r.returncode == 1 and "not found in any registry" in err(r)
    assert not (tmp_path / "x").exists()


# -- fact: 0.8.x..1.7.x drop --allow-cidr on create --from (allowed_cidrs: None);
#    fixed by f8a6fa62, first released in v1.8.0. 0.8.2 src/cli/machine.rs (~1548).

@pytest.mark.parametrize("version,ok", [("0.8.2", False), ("1.7.7", False), ("1.8.0", True),
                                        ("1.9.3", True), ("2.0.0", True)])
def test_launch_refuses_a_smolvm_older_than_1_8_0(tmp_path, version, ok):
    if ok:
        _, runner = _launched(tmp_path, version=version)
        assert runner.argvs[0] == ("smolvm", "--version")
        return
    with pytest.raises(LaunchError) as exc:
        _launched(tmp_path, version=version)
    msg = str(exc.value)
    assert "\n" not in msg and version in msg and "1.8.0" in msg and "--allow-cidr" in msg


def test_launch_without_a_readable_version_refuses_before_anything(tmp_path):
    backend, plan = _plan(tmp_path)
    runner = RecordingRunner().reply("smolvm", "--version", returncode=127,
                                     stderr="smolvm: command not found")
    with pytest.raises(LaunchError, match="command not found"):
        backend.launch(plan, runner)
    assert runner.argvs == [("smolvm", "--version")]


# -- fact: without --net (and without --allow-cidr/--allow-host/
#    --outbound-localhost-only/--dns/--network/-p, which each imply networking)
#    the VM gets no network at all. 1.8.0 and 1.9.3 src/network/launch.rs
#    plan_launch_network (~89-110: `wants_network = resources.network ||
#    has_ports || has_cidr_policy || has_dns_filter || has_fabric`, false ->
#    EffectiveNetworkBackend::None); src/agent/launcher.rs krun_add_vsock(ctx, 0).
#    The stand-in's machines are `--network none`; it refuses smolvm networking
#    as not modelled (a guest given one cannot be run, never PASSED).

@pytest.mark.parametrize("flags", [["--net"], ["--allow-cidr", "127.77.1.2/32"],
                                   ["--net", "--allow-cidr", "127.77.1.2/32"],
                                   ["--allow-host", "example.invalid"],
                                   ["--outbound-localhost-only"], ["--dns", "10.0.0.1"],
                                   ["--network", "fabric"], ["-p", "8080:80"],
                                   ["--port", "8080:80"], ["--net-backend", "tsi"]])
def test_standin_refuses_networking_as_not_modelled(smolvm, flags):
    r = smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()), *flags)
    assert r.returncode == 1 and "not modelled by the stand-in" in err(r), err(r)
    assert not (smolvm.tmp / "smolvm-home" / "machines" / "m.json").exists()


def test_standin_machine_has_no_network_and_sockets_are_bind_mounts(smolvm, tmp_path):
    """--mount-socket HOST:GUEST (1.9.3 src/cli/machine.rs ~3037, since v1.6.4
    b310083f) is modelled as a bind mount of the host socket; the machine
    keeps --network none."""
    import socket as so

    host = tmp_path / "s" / "pipelock.sock"
    host.parent.mkdir()
    srv = so.socket(so.AF_UNIX)
    srv.bind(str(host))
    try:
        r = smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()),
                   "--mount-socket", f"{host}:/run/bottle/pipelock.sock")
        assert r.returncode == 0, err(r)
        assert smolvm.record("m")["mount_sockets"] == [[str(host), "/run/bottle/pipelock.sock"]]
        assert smolvm("machine", "start", "--name", "m").returncode == 0
        run = next(c for c in smolvm.docker_calls() if c[:1] == ["run"])
        assert run[run.index("--network") + 1] == "none"
        assert f"type=bind,source={host},target=/run/bottle/pipelock.sock" in run
    finally:
        srv.close()


def test_standin_needs_the_host_socket_when_the_machine_starts(smolvm, tmp_path):
    r = smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()),
               "--mount-socket", f"{tmp_path}/nope.sock:/run/x.sock")
    assert r.returncode == 0, err(r)
    r = smolvm("machine", "start", "--name", "m")
    assert r.returncode == 1 and "does not exist" in err(r)


# -- fact: --mount-socket rules, 1.9.3 src/cli/machine.rs parse_published_sockets
#    (~138-240): split at the first ':'; both halves required; the guest path
#    absolute, without ';' or '|'; no guest path mounted twice; at most 64
#    (crates/smolvm-protocol/src/lib.rs PUBLISH_SOCKET_MAX). Since v1.6.4.

@pytest.mark.parametrize("specs,why", [
    (["/h.sock"], "expected HOST_PATH:GUEST_PATH"),
    ([":/g.sock"], "both HOST_PATH and GUEST_PATH are required"),
    (["/h.sock:"], "both HOST_PATH and GUEST_PATH are required"),
    (["/h.sock:g.sock"], "must be absolute"),
    (["/h.sock:/g;x"], "unsupported character"),
    (["/h.sock:/g|x"], "unsupported character"),
    (["/a.sock:/g.sock", "/b.sock:/g.sock"], "mounted more than once"),
    ([f"/h{i}.sock:/g{i}.sock" for i in range(65)], "too many published sockets"),
])
def test_mount_socket_rules(smolvm, specs, why):
    args = [a for spec in specs for a in ("--mount-socket", spec)]
    r = smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()), *args)
    assert r.returncode == 1 and why in err(r), err(r)


def test_mount_socket_exists_from_1_6_4(tmp_path):
    sm = Smolvm(tmp_path, version="1.6.3")
    r = sm("machine", "create", "--name", "m", "-I", str(sm.archive()),
           "--mount-socket", "/h.sock:/g.sock")
    assert r.returncode == 2 and "unexpected argument '--mount-socket'" in err(r)


# -- fact: machine names, 1.9.3 src/data/mod.rs validate_vm_name (~58-100),
#    MAX_VM_NAME_LENGTH 128, enforced in src/agent/manager.rs (~774; 1.8.0 ~659).

@pytest.mark.parametrize("name,ok,why", [
    ("bottle-demo-0001", True, ""), ("a_b", True, ""), ("x" * 128, True, ""),
    ("x" * 129, False, "too long"), ("bottle.demo", False, "invalid character: '.'"),
    ("a--b", False, "consecutive hyphens"), ("ab-", False, "cannot end with a hyphen"),
    ("-ab", False, "must start with a letter or digit"), ("a/b", False, "path separators"),
])
def test_machine_names(smolvm, name, ok, why):
    r = smolvm("machine", "create", "--name", name, "-I", str(smolvm.archive()))
    assert (r.returncode == 0) == ok, err(r)
    assert why in err(r)


def test_the_spec_loader_refuses_names_smolvm_would_refuse(tmp_path):
    """bottle-<name>-<suffix> must pass validate_vm_name: the loader refuses a
    trailing or doubled hyphen (NAME_RE already excludes '.' and caps at 40)."""
    from bottle_api.spec import SpecError, load_spec

    for bad in ("demo-", "de--mo", "de.mo"):
        f = tmp_path / f"{len(bad)}-{bad.count('-')}.yaml"
        f.write_text(f"name: {bad}\n")
        with pytest.raises(SpecError) as exc:
            load_spec(f)
        assert "name" in str(exc.value) and "\n" not in str(exc.value)
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: de-mo\n")
    assert load_spec(ok).name == "de-mo"


def test_version_parsing():
    assert parse_smolvm_version("smolvm 1.9.3\n") == (1, 9, 3)
    assert parse_smolvm_version("smolvm 0.8.2") < MIN_SMOLVM
    assert parse_smolvm_version("something else") is None


# -- fact: from v1.1.0, -I takes a registry ref, a `docker save` archive path,
#    `-` (stdin) or a rootfs directory. 1.9.3 src/cli/machine.rs CreateCmd.image
#    doc (~2937-2941); src/data/image_source.rs classify/looks_local; eb6aecfd.

def test_image_archive_path_is_local_and_a_bare_tag_is_a_registry_ref(smolvm):
    archive = smolvm.archive()
    ok = smolvm("machine", "create", "--name", "m", "-I", str(archive))
    assert ok.returncode == 0, err(ok)
    assert smolvm.record("m")["image_id"] == f"sha256:{IMAGE_HEX}"
    bare = smolvm("machine", "create", "--name", "m2", "-I", "claude-bottle:latest")
    assert bare.returncode == 1 and "registry" in err(bare)
    stdin = smolvm("machine", "create", "--name", "m3", "-I", "-", input=archive.read_bytes())
    assert stdin.returncode == 0, err(stdin)


def test_backend_hands_an_absolute_tar_archive_to_I(tmp_path):
    plan, runner = _launched(tmp_path)
    create = next(a for a in runner.argvs if a[:3] == ("smolvm", "machine", "create"))
    image = create[create.index("-I") + 1]
    assert image == str(artifact_path(plan)) and image.startswith("/") and image.endswith(".tar")
    save = next(a for a in runner.argvs if a[:2] == ("docker", "save"))
    assert save[save.index("-o") + 1].startswith(image)


# -- fact: from v1.0.2, create/delete take -n/--name (positional rejected) and
#    create's workload needs `--`. 1.9.3 src/cli/machine.rs CreateCmd (~2925,
#    `last = true` ~3099), DeleteCmd (~3976); commit 67a09b27.

def test_positional_machine_name_is_rejected(smolvm):
    archive = smolvm.archive()
    r = smolvm("machine", "create", "m", "-I", str(archive))
    assert r.returncode == 2 and "unexpected argument 'm'" in err(r)
    ok = smolvm("machine", "create", "-n", "m", "-I", str(archive), "--", "sleep", "infinity")
    assert ok.returncode == 0, err(ok)
    assert smolvm.record("m")["command"] == ["sleep", "infinity"]
    r = smolvm("machine", "delete", "m", "-f")
    assert r.returncode == 2 and "unexpected argument 'm'" in err(r)
    assert smolvm("machine", "delete", "--name", "m", "-f").returncode == 0


def test_backend_names_machines_with_flags(tmp_path):
    _, runner = _launched(tmp_path)
    for verb in ("create", "start", "stop", "delete", "exec"):
        calls = [a for a in runner.argvs if a[:3] == ("smolvm", "machine", verb)]
        assert calls, verb
        for a in calls:
            assert a[3] == "--name", a


# -- fact: start/stop take -n/--name; exec takes -e K=V (repeatable), -w, -i, -t,
#    then the command. 0.8.2 src/cli/machine.rs (~1063-1093, ~1579, ~1614);
#    1.9.3 ExecCmd (~2626-2676). CORRECTION to the facts file: exec's name is
#    `#[arg(long)]`, i.e. --name only, no -n (0.8.2, 1.8.0 and 1.9.3 alike).

def test_exec_grammar(smolvm):
    smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()))
    assert smolvm("machine", "start", "-n", "m").returncode == 0
    r = smolvm("machine", "exec", "-n", "m", "--", "true")
    assert r.returncode == 2 and "unexpected argument '-n'" in err(r)
    r = smolvm("machine", "exec", "--name", "m", "-e", "A=1", "-eB=2", "-w", "/w", "-it",
               "--", "sh", "-c", "x")
    assert r.returncode == 0, err(r)
    call = smolvm.docker_calls()[-1]
    assert call == ["exec", "-i", "-t", "-e", "A=1", "-e", "B=2", "-w", "/w",
                    "smolvm-standin-m", "sh", "-c", "x"]
    # trailing_var_arg: the command starts at the first positional, flags and all
    r = smolvm("machine", "exec", "--name", "m", "ls", "-e", "x")
    assert r.returncode == 0 and smolvm.docker_calls()[-1][-3:] == ["ls", "-e", "x"]


def test_backend_exec_uses_only_the_exec_grammar(tmp_path):
    _, runner = _launched(tmp_path)
    for a in (a for a in runner.argvs if a[:3] == ("smolvm", "machine", "exec")):
        head = list(a[3:a.index("--")])
        i = 0
        while i < len(head):
            flag = head[i]
            assert flag in ("--name", "-e", "-w", "-i", "-t"), a
            i += 2 if flag in ("--name", "-e", "-w") else 1


# -- fact: machine cp copies one regular file (File::open + stream), no
#    directory copy. 0.8.2 src/cli/machine.rs (~2438); 1.9.3 CpCmd::run (~4923).

def test_cp_refuses_a_directory(smolvm, tmp_path):
    smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()))
    d = tmp_path / "dir"
    d.mkdir()
    r = smolvm("machine", "cp", str(d), "m:/tmp/dir")
    assert r.returncode == 1 and "Is a directory" in err(r)
    f = d / "f"
    f.write_text("x")
    assert smolvm("machine", "cp", str(f), "m:/tmp/f").returncode == 0
    assert smolvm("machine", "cp", str(f), "/tmp/f").returncode == 1  # no machine: side


def test_cp_owner_flags_exist_from_1_9_0(tmp_path):
    for version, rc in (("1.8.3", 2), ("1.9.0", 0)):
        (tmp_path / version).mkdir()
        sm = Smolvm(tmp_path / version, version=version)
        sm("machine", "create", "--name", "m", "-I", str(sm.archive()))
        f = tmp_path / version / "f"
        f.write_text("x")
        assert sm("machine", "cp", "--mode", "600", str(f), "m:/tmp/f").returncode == rc


def test_backend_copies_directories_as_a_tar_stream(tmp_path):
    skill = tmp_path / "skills" / "review"
    (skill / "scripts").mkdir(parents=True)
    (skill / "SKILL.md").write_text("# review\n")
    plan, runner = _launched(tmp_path, skills=(skill,))
    assert not [a for a in runner.argvs if a[:3] == ("smolvm", "machine", "cp")
                and Path(a[3]).is_dir()], "a directory was handed to `machine cp`"
    pipe = [a for a in runner.argvs if len(a) > 1 and a[1] == tar_pipe.__file__]
    assert len(pipe) == 1 and pipe[0][2] == str(skill) and pipe[0][3] == "--"
    inner = list(pipe[0][4:])
    assert inner[:6] == ["smolvm", "machine", "exec", "--name", inner[4], "-i"]
    assert inner[-1] == "/home/node/.claude/skills/review"


def test_tar_pipe_streams_the_tree(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x").write_text("x")
    (src / "l").symlink_to("a/x")
    buf = io.BytesIO()
    tar_pipe.stream(str(src), buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"./a", "./a/x", "./l"}
    assert members["./l"].issym() and members["./l"].linkname == "a/x"
    assert all(m.uid == 0 and m.uname == "root" for m in members.values())


# -- fact: --allow-cidr, --allow-host and --outbound-localhost-only resolve to
#    one CIDR list and each implies --net (1.9.3 src/cli/machine.rs
#    resolve_egress_flags ~35-98): SMOLVM-NO-NET refuses every one of them.

def test_no_net_check_names_every_networking_flag():
    from conformance.argv import checks

    for flags in (["--net"], ["--allow-cidr", "127.77.1.2/32"], ["--outbound-localhost-only"],
                  ["--allow-host", "h.invalid"], ["--dns", "10.0.0.1"], ["--network", "n"],
                  ["-p", "1:2"], ["--net-backend", "tsi"]):
        argv = ("smolvm", "machine", "create", "--name", "m", "-I", "/a.tar", *flags)
        v = checks.check_smolvm_no_net([argv])
        assert not v.ok and "gives the guest networking" in v.problems[0], (flags, v)
    assert checks.check_smolvm_no_net(
        [("smolvm", "machine", "create", "--name", "m", "-I", "/a.tar",
          "--mount-socket", "/h/pipelock.sock:/run/bottle/pipelock.sock")]).ok


# -- fact: --cpus/--mem are honoured; defaults 4 CPUs / 8192 MiB.
#    0.8.2 src/cli/machine.rs (~1514-1523), src/data/resources.rs.

def test_resource_defaults_and_backend_sizes(smolvm, tmp_path):
    smolvm("machine", "create", "--name", "m", "-I", str(smolvm.archive()))
    assert (smolvm.record("m")["cpus"], smolvm.record("m")["mem"]) == (4, 8192)
    r = smolvm("machine", "create", "--name", "z", "-I", str(smolvm.archive()), "--cpus", "0")
    assert r.returncode == 1 and "greater than zero" in err(r)
    plan, runner = _launched(tmp_path / "b")
    create = next(a for a in runner.argvs if a[:3] == ("smolvm", "machine", "create"))
    assert create[create.index("--cpus") + 1] == str(plan.cpus)
    assert create[create.index("--mem") + 1] == str(plan.mem_mib)


# -- fact: -w on create --from is ignored (the workdir comes from the pack
#    manifest). 0.8.2 src/cli/machine.rs (~1545 `workdir: manifest.workdir`).

def test_workdir_is_ignored_with_from(smolvm, tmp_path):
    smolvm("pack", "create", "-I", "claude-bottle:latest", "-o", str(tmp_path / "p"),
           SMOLVM_STANDIN_REGISTRY="claude-bottle:latest")
    smolvm("machine", "create", "--name", "f", "--from", str(tmp_path / "p.smolmachine"),
           "-w", "/elsewhere")
    assert smolvm.record("f")["workdir"] == "/home/node/work"
    smolvm("machine", "create", "--name", "i", "-I", str(smolvm.archive()), "-w", "/elsewhere")
    assert smolvm.record("i")["workdir"] == "/elsewhere"


# -- stand-in identity; no host network question ------------------------------------

def test_standin_says_it_is_one(smolvm):
    out = smolvm("--version").stdout.decode()
    assert out.splitlines()[0] == "smolvm 1.9.3"
    assert "stand-in" in out and "not modelled" in out
    backend = SmolmachinesBackend()
    runner = RecordingRunner().reply("smolvm", "--version", stdout=out)
    assert "stand-in" in backend.standins(runner)["smolvm"]
    # Issue 14: the guest has no network anywhere, which the stand-in models:
    # the network probes run on it.
    assert backend.live_network_unsupported(runner) is None
    real = RecordingRunner().reply("smolvm", "--version", stdout="smolvm 1.9.3\n")
    # Real smolvm: only the bundle's pipelock stand-in is left to report.
    assert set(backend.standins(real)) == {"pipelock"}
    assert backend.live_network_unsupported(real) is None


def test_launch_asks_no_host_network_question(tmp_path):
    """The 127.77.x.y address and its macOS lo0 alias are gone (issue 14):
    a launch runs no uname/ifconfig and no smolvm networking flag."""
    _, runner = _launched(tmp_path)
    assert not [a for a in runner.argvs if a[0] in ("uname", "ifconfig")]
    create = next(a for a in runner.argvs if a[:3] == ("smolvm", "machine", "create"))
    assert "--mount-socket" in create
    assert not {"--net", "--allow-cidr", "--allow-host", "-p", "--dns"} & set(create)


def test_channel_copy_argv_picks_cp_for_files_only(tmp_path):
    ch = SmolvmChannel("m1")
    f = tmp_path / "f"
    f.write_text("x")
    assert ch.copy_argv(str(f), "/g/f") == ["smolvm", "machine", "cp", str(f), "m1:/g/f"]
    argv = ch.copy_argv(str(tmp_path), "/g/d")
    assert argv[:4] == [sys.executable, tar_pipe.__file__, str(tmp_path), "--"]


# -- helpers -----------------------------------------------------------------------

def _plan(tmp_path, **kw):
    backend = SmolmachinesBackend()
    host = HostContext(env={}, home=tmp_path / "home", cwd=tmp_path,
                       state_root=tmp_path / "state" / "bottle-ref")
    return backend, backend.prepare(BottleSpec(name="facts", **kw), host)


def _launched(tmp_path, *, version="1.9.3", **kw):
    backend, plan = _plan(tmp_path, **kw)
    runner = RecordingRunner()
    backend.script(runner, plan)
    runner.reply("smolvm", "--version", stdout=f"smolvm {version}\n", first=True)
    backend.launch(plan, runner).close()
    return plan, runner


def test_tar_pipe_and_standin_import_only_the_standard_library():
    """Both run by absolute path from anywhere (a tmux pane's cwd, CI's PATH)."""
    import ast

    for path in (Path(tar_pipe.__file__), STANDIN):
        roots = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
        assert not (roots - set(sys.stdlib_module_names) - {"__future__"}), (path, roots)


def test_tar_pipe_refuses_a_non_directory(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert tar_pipe.main([str(f), "--", "true"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert tar_pipe.main([str(tmp_path), "true"]) == 2
