"""Registry-free image builds, without an engine.

Content tags (same inputs -> same tag, any change -> new tag), the bundle's
source closure, skip-when-present and cold-build argv through a
RecordingRunner, safe rootfs cleanup, and scripts/engine.sh with stub tools.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bottle_ref.images import fetch, inputs, rootfs
from bottle_ref.images.build import Builder, main
from bottle_ref.images.inputs import Arch, ImageError, ImageInputs
from bottle_api.runner import CommandError, Completed, RecordingRunner

REPO = Path(__file__).resolve().parents[2]
ENGINE_SH = REPO / "scripts" / "engine.sh"
AMD64 = Arch.from_docker("amd64")
TAG = re.compile(r"^bottle-(base|agent|bundle):[0-9a-f]{12}$")


# -- a fake bottle_ref package for the bundle's inputs -------------------------

def fake_package(root: Path) -> Path:
    """A source root with the bundle's two packages and a reference beside them."""
    files = {
        "bottle_bundle/__init__.py": "",
        "bottle_bundle/__main__.py": "from .supervisor import main\nmain()\n",
        "bottle_bundle/supervisor.py": "from bottle_api import conventions\n",
        "bottle_bundle/data.yaml": "a: 1\n",
        "bottle_bundle/__pycache__/supervisor.cpython-311.pyc": "junk",
        "bottle_bundle/requirements.txt": "pyyaml==6.0.2\n",
        "bottle_api/__init__.py": "",
        "bottle_api/conventions.py": "PORT = 1\n",
        "bottle_ref/__init__.py": "",
        "bottle_ref/backends/docker.py": "import bottle_api.runner\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def bundle_tag(pkg: Path, arch: Arch = AMD64) -> str:
    return inputs.bundle_inputs(inputs.base_inputs(arch), arch, source_root=pkg).tag


# -- hashing ------------------------------------------------------------------

def test_same_inputs_same_tag_and_tag_shape():
    a = ImageInputs.of("bottle-agent", {"x": "1", "y": b"2"})
    b = ImageInputs.of("bottle-agent", {"y": "2", "x": b"1"})  # order and str/bytes
    assert a.tag == b.tag
    assert TAG.match(a.tag)
    base = inputs.base_inputs(AMD64)
    assert inputs.agent_inputs(base, AMD64).tag == inputs.agent_inputs(base, AMD64).tag
    assert TAG.match(base.tag) and TAG.match(inputs.agent_inputs(base, AMD64).tag)


def test_encoding_is_unambiguous():
    assert ImageInputs.of("r", {"a": "bc"}).tag != ImageInputs.of("r", {"ab": "c"}).tag
    assert ImageInputs.of("r", {"a": "b", "c": ""}).tag != ImageInputs.of("r", {"a": "bc"}).tag


@pytest.mark.parametrize("change", ["packages", "arch", "trim"])
def test_base_tag_follows_every_input(monkeypatch, change):
    before = inputs.base_inputs(AMD64).tag
    arch = AMD64
    if change == "packages":
        monkeypatch.setattr(inputs, "ROOTFS_PACKAGES", inputs.ROOTFS_PACKAGES + ("procps",))
    elif change == "arch":
        arch = Arch.from_docker("arm64")
    else:
        monkeypatch.setattr(inputs, "ROOTFS_TRIM_DIRS", ("usr/share/man",))
    assert inputs.base_inputs(arch).tag != before


def test_agent_tag_follows_dockerfile_version_and_base(monkeypatch):
    base = inputs.base_inputs(AMD64)
    before = inputs.agent_inputs(base, AMD64).tag
    assert inputs.agent_inputs(base, AMD64, "9.9.9").tag != before
    other_base = inputs.base_inputs(Arch.from_docker("arm64"))
    assert inputs.agent_inputs(other_base, AMD64).tag != before
    text = inputs.dockerfile("agent")
    monkeypatch.setattr(inputs, "dockerfile", lambda name: text + "# edit\n")
    assert inputs.agent_inputs(base, AMD64).tag != before


def test_bundle_tag_follows_requirements_source_and_dockerfile(tmp_path, monkeypatch):
    pkg = fake_package(tmp_path)
    before = bundle_tag(pkg)
    assert bundle_tag(pkg) == before

    (pkg / "bottle_bundle/requirements.txt").write_text("pyyaml==6.0.1\n")
    after_req = bundle_tag(pkg)
    assert after_req != before

    (pkg / "bottle_api/conventions.py").write_text("PORT = 2  # the seam's conventions\n")
    after_src = bundle_tag(pkg)
    assert after_src != after_req

    (pkg / "bottle_bundle/data.yaml").write_text("a: 2\n")
    after_data = bundle_tag(pkg)
    assert after_data != after_src

    text = inputs.dockerfile("bundle")
    monkeypatch.setattr(inputs, "dockerfile", lambda name: text + "# edit\n")
    assert bundle_tag(pkg) != after_data


def test_bundle_tag_ignores_code_the_bundle_does_not_import(tmp_path):
    pkg = fake_package(tmp_path)
    before = bundle_tag(pkg)
    (pkg / "bottle_ref/backends/docker.py").write_text("# a backend edit\n")
    (pkg / "bottle_bundle/__pycache__/supervisor.cpython-311.pyc").write_text("other junk")
    assert bundle_tag(pkg) == before


def test_bundle_sources_are_the_two_packages(tmp_path):
    pkg = fake_package(tmp_path)
    assert inputs.bundle_sources(pkg) == [
        "bottle_api/__init__.py",
        "bottle_api/conventions.py",
        "bottle_bundle/__init__.py",
        "bottle_bundle/__main__.py",
        "bottle_bundle/data.yaml",
        "bottle_bundle/requirements.txt",
        "bottle_bundle/supervisor.py",
    ]


def test_missing_requirements_is_a_clear_error(tmp_path):
    pkg = fake_package(tmp_path)
    (pkg / "bottle_bundle/requirements.txt").unlink()
    with pytest.raises(ImageError, match="requirements not found"):
        bundle_tag(pkg)


def test_unknown_engine_arch_is_a_clear_error():
    with pytest.raises(ImageError, match="unsupported engine architecture 's390x'"):
        Arch.from_docker("s390x")


# -- skip when present, build when absent ---------------------------------------

class FsRecorder(RecordingRunner):
    """A RecordingRunner whose successful debootstrap leaves what a real one
    does for the integrity check: every ROOTFS_REQUIRED file."""

    def run(self, argv, **kw):
        result = super().run(argv, **kw)
        if argv[0] == "debootstrap" and result.ok:
            for rel in inputs.ROOTFS_REQUIRED:
                path = Path(argv[-2]) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"content of {rel}")  # a 0-byte required file is damage
        return result


def recorder(*, present: bool | dict[str, bool] = True) -> RecordingRunner:
    runner = FsRecorder()
    runner.reply("docker", "version", stdout="amd64\n")
    states = present if isinstance(present, dict) else {
        r: present for r in ("base", "agent", "bundle")}
    for repo, ok in states.items():
        runner.reply("docker", "image", "inspect", "*", "*", f"bottle-{repo}:*",
                     returncode=0 if ok else 1)
    return runner


def builder(tmp_path: Path, runner: RecordingRunner, *, euid: int = 0,
            lines: list[str] | None = None, debootstrap: bool = True,
            base_ref: str | None = None, tick: float = 15.0) -> Builder:
    pkg = fake_package(tmp_path / "src")
    cache = tmp_path / "cache"
    npm = cache / "npm" / f"claude-code-{inputs.CLAUDE_CODE_VERSION}-linux-x64"
    npm.mkdir(parents=True)
    for name in (fetch.NATIVE_TGZ, fetch.WRAPPER_TGZ):
        (npm / name).write_bytes(b"tgz")
    codex = cache / "npm" / f"codex-{inputs.CODEX_VERSION}-linux-x64"
    codex.mkdir(parents=True)
    for name in (fetch.CODEX_NATIVE_TGZ, fetch.CODEX_WRAPPER_TGZ):
        (codex / name).write_bytes(b"tgz")
    fetch.write_manifest(npm)  # as a real fetch records them
    fetch.write_manifest(codex)
    say = (lines.append if lines is not None else (lambda line: None))
    return Builder(runner, cache=cache, say=say, euid=euid, source_root=pkg,
                   debootstrap=debootstrap, platform="linux", base_ref=base_ref, tick=tick)


def builds(runner: RecordingRunner) -> list[tuple[str, ...]]:
    return [a for a in runner.argvs if a[:2] == ("docker", "build")]


def test_present_images_are_never_rebuilt(tmp_path):
    runner = recorder(present=True)
    b = builder(tmp_path, runner)
    tags = b.ensure(["agent", "bundle"])
    plan = b.plan(AMD64, ["agent", "bundle"])
    assert tags == {"agent": plan["agent"].tag, "bundle": plan["bundle"].tag}
    assert builds(runner) == []
    assert runner.find("debootstrap") == [] and runner.find("bash") == []
    assert runner.find("npm") == [] and runner.find("*", "-m", "pip") == []
    inspected = [a[-1] for a in runner.argvs if a[:3] == ("docker", "image", "inspect")]
    assert inspected == [plan["agent"].tag, plan["bundle"].tag]  # base never consulted


def test_only_the_missing_image_is_built_on_the_present_base(tmp_path):
    runner = recorder(present={"base": True, "agent": True, "bundle": False})
    runner.reply("*", "-m", "pip", "download")
    b = builder(tmp_path, runner)
    tags = b.ensure(["agent", "bundle"])
    base = b.plan(AMD64, ["bundle"])["base"]
    (only,) = builds(runner)
    assert only[only.index("--tag") + 1] == tags["bundle"]
    assert only[only.index("--build-arg") + 1] == f"BASE={base.tag}"
    assert runner.find("debootstrap") == [] and runner.find("bash") == []
    assert runner.find("npm") == []  # the agent is present: nothing fetched for it
    assert not list(b.cache.glob("context-*")), "build context left behind"


def test_cold_build_order_and_argv(tmp_path):
    runner = recorder(present=False)
    lines: list[str] = []
    b = builder(tmp_path, runner, lines=lines)
    tags = b.ensure(["agent", "bundle"])
    plan = b.plan(AMD64, ["agent", "bundle"])
    kinds = [a[0] if a[0] != "docker" else " ".join(a[:2]) for a in runner.argvs
             if a[:3] != ("docker", "image", "inspect") and a[:2] != ("docker", "version")]
    assert kinds[:2] == ["debootstrap", "bash"]  # rootfs, then tar | docker import
    assert kinds.count("docker build") == 2
    (boot,) = runner.find("debootstrap")
    assert "--variant=minbase" in boot.argv and "--arch=amd64" in boot.argv
    assert "--include=ca-certificates,curl,git,python3,python3-venv,util-linux" in boot.argv
    assert boot.argv[-3:-1][0] == "bookworm" and boot.argv[-1] == inputs.DEBIAN_MIRROR
    (imp,) = runner.find("bash")
    assert plan["base"].tag in imp.argv and "docker import" in imp.argv[2]
    rootfs_path = rootfs.rootfs_dir(b.cache, plan["base"])
    assert str(rootfs_path) in imp.argv and rootfs_path.is_dir()
    assert (rootfs_path / "etc/dpkg/dpkg.cfg.d/bottle-slim").is_file()
    assert not rootfs_path.with_name(rootfs_path.name + ".partial").exists()
    assert [a[a.index("--tag") + 1] for a in builds(runner)] == [tags["agent"], tags["bundle"]]
    assert tags == {"agent": plan["agent"].tag, "bundle": plan["bundle"].tag}
    assert lines and all("=" not in line for line in lines)  # nox parses '=' lines
    assert any(re.search(r"debootstrap .*: done in \d+\.\ds$", line) for line in lines)


def sound_rootfs(cache: Path, base: ImageInputs) -> Path:
    fs = rootfs.rootfs_dir(cache, base)
    for rel in inputs.ROOTFS_REQUIRED:
        (fs / rel).parent.mkdir(parents=True, exist_ok=True)
        (fs / rel).write_text(f"content of {rel}")
    rootfs._write_marker(fs)
    return fs


def test_base_present_but_rootfs_cached_imports_without_debootstrap(tmp_path):
    runner = recorder(present=False)
    b = builder(tmp_path, runner)
    base = b.plan(AMD64, ["agent"])["base"]
    sound_rootfs(b.cache, base)
    b.ensure(["agent"])
    assert runner.find("debootstrap") == []
    assert len(runner.find("bash")) == 1


def test_cold_rootfs_gets_its_completion_marker_last(tmp_path):
    runner = recorder(present=False)
    b = builder(tmp_path, runner)
    b.ensure(["agent"])
    fs = rootfs.rootfs_dir(b.cache, b.plan(AMD64, ["agent"])["base"])
    marker = rootfs.marker_path(fs).read_text().splitlines()
    assert marker[0] == fs.name  # then the hash of each required file
    assert [line.split("  ")[1] for line in marker[1:]] == list(inputs.ROOTFS_REQUIRED)
    assert rootfs.damage(fs) is None


@pytest.mark.parametrize("harm, why", [
    ("marker", "no completion marker"),
    ("etc/debian_version", "etc/debian_version is missing"),
    ("usr/bin/python3", "usr/bin/python3 is missing"),
])
def test_damaged_rootfs_is_rebuilt_with_a_message(tmp_path, harm, why):
    """The issue's survivor of two racing builds lacked /etc/debian_version;
    keyed by content hash, it would have been reused silently."""
    runner = recorder(present=False)
    lines: list[str] = []
    b = builder(tmp_path, runner, lines=lines)
    base = b.plan(AMD64, ["agent"])["base"]
    fs = sound_rootfs(b.cache, base)
    (fs / "etc/leftover").write_text("from the damaged tree")
    if harm == "marker":
        rootfs.marker_path(fs).unlink()
    else:
        (fs / harm).unlink()
    b.ensure(["agent"])
    assert any(f"cached rootfs {fs.name} is damaged ({why}); rebuilding it" in line
               for line in lines), lines
    assert len(runner.find("debootstrap")) == 1
    assert rootfs.damage(fs) is None and not (fs / "etc/leftover").exists()


def test_debootstrap_that_leaves_an_incomplete_tree_is_refused(tmp_path):
    runner = RecordingRunner()  # its debootstrap "succeeds" but writes nothing
    runner.reply("docker", "version", stdout="amd64\n")
    runner.reply("docker", "image", "inspect", returncode=1)
    b = builder(tmp_path, runner)
    with pytest.raises(ImageError, match=r"rootfs is incomplete \(etc/debian_version is missing"):
        b.ensure(["agent"])
    assert not [p for p in b.cache.iterdir() if p.name.startswith("rootfs-")]


# -- the registry route -------------------------------------------------------------

@pytest.mark.parametrize("euid, debootstrap, base_ref, platform, route", [
    (0, True, None, "linux", None),
    (1000, True, None, "linux", "not root"),
    (0, False, None, "linux", "debootstrap not installed"),
    (0, True, None, "darwin", "no debootstrap route on darwin"),
    (0, True, "127.0.0.1:5000/debian:bookworm", "linux", "--base"),
])
def test_route_choice(euid, debootstrap, base_ref, platform, route):
    from bottle_ref.images.build import registry_route_reason

    why = registry_route_reason(euid, debootstrap, base_ref, platform)
    assert (why is None) if route is None else (route in why)


def registry_recorder(*, pulled: bool) -> RecordingRunner:
    runner = recorder(present=False)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "debian:bookworm-slim",
                 stdout="sha256:" + "ab" * 32 + "\n", times=None if pulled else 0, first=True)
    return runner


@pytest.mark.parametrize("euid, debootstrap", [(1000, True), (0, False)])
def test_without_root_or_debootstrap_the_base_is_built_from_the_registry(tmp_path, euid,
                                                                         debootstrap):
    runner = registry_recorder(pulled=True)
    b = builder(tmp_path, runner, euid=euid, debootstrap=debootstrap)
    tags = b.ensure(["agent"])
    assert runner.find("debootstrap") == [] and runner.find("bash") == []
    base_build, agent_build = builds(runner)
    assert "FROM=debian:bookworm-slim" in base_build
    base_tag = base_build[base_build.index("--tag") + 1]
    assert TAG.match(base_tag) and f"BASE={base_tag}" in agent_build
    assert agent_build[agent_build.index("--tag") + 1] == tags["agent"]
    # A different base: never the debootstrap route's tags.
    assert base_tag != inputs.base_inputs(AMD64).tag
    assert tags["agent"] != b.plan(AMD64, ["agent"])["agent"].tag
    assert runner.find("docker", "pull") == []  # the engine had it: nothing pulled


def test_registry_route_pulls_a_missing_base_and_keys_on_its_id(tmp_path):
    runner = recorder(present=False)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "my/base:1",
                 returncode=1, times=1, first=True)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "my/base:1",
                 stdout="sha256:" + "cd" * 32 + "\n")
    b = builder(tmp_path, runner, base_ref="my/base:1")
    b.ensure(["bundle"])
    (pull,) = runner.find("docker", "pull")
    assert pull.argv[-1] == "my/base:1"
    base = inputs.registry_base_inputs(AMD64, "my/base:1", "sha256:" + "cd" * 32)
    assert any(f"FROM=my/base:1" in a and base.tag in a for a in builds(runner))
    moved = inputs.registry_base_inputs(AMD64, "my/base:1", "sha256:" + "ef" * 32)
    assert moved.tag != base.tag  # a moved tag is a new base


def test_registry_base_dockerfile_matches_the_rootfs_recipe():
    text = inputs.registry_base_dockerfile()
    assert "FROM ${FROM}" in text
    assert " ".join(sorted(inputs.ROOTFS_PACKAGES)) in text
    for change in inputs.IMPORT_CHANGES:
        assert change in text.splitlines()


def test_unpullable_base_is_one_clear_error(tmp_path, capsys):
    runner = recorder(present=False)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "nope:1", returncode=1,
                 first=True)
    runner.reply("docker", "pull", returncode=1, stderr="Error response from daemon: "
                 "pull access denied for nope")
    b = builder(tmp_path, runner, base_ref="nope:1")
    assert main(["agent", "--base", "nope:1"], builder=b) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("images: error: cannot pull base image nope:1: ")
    assert "BOTTLE_BASE_IMAGE" in err


# -- progress and the cache lock ----------------------------------------------------

def test_slow_step_prints_elapsed_time_while_it_runs(tmp_path):
    import time as time_mod

    lines: list[str] = []
    b = builder(tmp_path, recorder(), lines=lines, tick=0.05)
    with b.step("debootstrap x"):
        time_mod.sleep(0.3)
    ticks = [line for line in lines if "so far" in line]
    assert lines[0] == "images: debootstrap x ..."
    assert len(ticks) >= 3 and all(re.fullmatch(r"images: debootstrap x: \d+s so far", t)
                                   for t in ticks)
    assert lines[-1].startswith("images: debootstrap x: done in")
    assert all("=" not in line for line in lines)


def test_default_tick_is_at_most_15_seconds():
    from bottle_ref.images import build

    assert build.TICK <= 15 and Builder(RecordingRunner()).tick <= 15


def _hold_lock_then_build(cache: str, ready, go, out) -> None:
    """In a child process: build through a lock-holding Builder."""
    from bottle_ref.images.build import CacheLock

    with CacheLock(Path(cache), say=lambda line: None):
        ready.set()
        go.wait(30)
    out.put("released")


def test_a_build_waits_for_the_cache_lock_and_says_so(tmp_path):
    import multiprocessing as mp

    from bottle_ref.images.build import CacheLock

    ctx = mp.get_context("fork")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    holder = ctx.Process(target=_hold_lock_then_build, args=(str(tmp_path), ready, go, out))
    holder.start()
    try:
        assert ready.wait(30)
        lines: list[str] = []
        import threading

        threading.Timer(0.3, go.set).start()
        with CacheLock(tmp_path, say=lines.append, tick=0.1):
            assert out.get(timeout=30) == "released"  # we got it only after the holder let go
        assert lines[0].startswith(f"images: waiting for another build (pid {holder.pid})")
    finally:
        go.set()
        holder.join(30)


def _concurrent_build(cache: str, src: str, q) -> None:
    """A cold debootstrap-route build whose debootstrap is slow and writes
    files, so two at once would race on one rootfs without the lock."""
    import time as time_mod

    class Slow(FsRecorder):
        def run(self, argv, **kw):
            argv = tuple(str(a) for a in argv)
            if argv[0] == "debootstrap":
                time_mod.sleep(0.5)
            if argv[:3] == ("docker", "image", "inspect"):
                # the engine is shared: an image exists once any build made it
                made = Path(cache, "made")
                tags = made.read_text().split() if made.exists() else []
                return Completed(tuple(argv), 0 if argv[-1] in tags else 1)
            result = super().run(argv, **kw)
            if argv[:2] in (("bash", "-c"), ("docker", "build")):
                tag = argv[4] if argv[0] == "bash" else argv[argv.index("--tag") + 1]
                with open(Path(cache, "made"), "a") as f:
                    f.write(tag + "\n")
            return result

    runner = Slow()
    runner.reply("docker", "version", stdout="amd64\n")
    b = Builder(runner, cache=Path(cache), say=lambda line: None, euid=0,
                source_root=Path(src), debootstrap=True, platform="linux", tick=0.1)
    try:
        tags = b.ensure(["agent", "bundle"])
        q.put(("ok", tags, len(runner.find("debootstrap"))))
    except BaseException as exc:  # reported to the parent
        q.put(("error", repr(exc), 0))


def test_two_builds_at_once_both_succeed_from_one_cache(tmp_path):
    import multiprocessing as mp

    b = builder(tmp_path, recorder())  # writes the fake npm tarballs and source
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_concurrent_build, args=(str(b.cache), str(b.source_root), q))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert results[0][1] == results[1][1]
    assert sorted(r[2] for r in results) == [0, 1]  # one debootstrap; the other waited
    fs = rootfs.rootfs_dir(b.cache, b.plan(AMD64, ["agent"])["base"])
    assert rootfs.damage(fs) is None
    assert not list(b.cache.glob("rootfs-*.partial"))


def test_failed_debootstrap_leaves_no_half_built_rootfs(tmp_path):
    runner = recorder(present=False)
    runner.reply("debootstrap", returncode=1, stderr="E: Couldn't download packages")
    b = builder(tmp_path, runner)
    with pytest.raises(CommandError, match="Couldn't download"):
        b.ensure(["agent"])
    assert not [p for p in b.cache.iterdir() if p.name.startswith("rootfs-")]
    assert builds(runner) == []


def test_interrupted_debootstrap_leaves_no_half_built_rootfs(tmp_path, capsys):
    class Interrupted(RecordingRunner):
        def run(self, argv, **kw):
            if argv[0] == "debootstrap":
                assert Path(argv[-2]).is_dir()  # building in <rootfs>.partial
                raise KeyboardInterrupt
            return super().run(argv, **kw)

    runner = Interrupted()
    runner.reply("docker", "version", stdout="amd64\n")
    runner.reply("docker", "image", "inspect", returncode=1)
    b = builder(tmp_path, runner)
    assert main(["agent"], builder=b) == 130
    assert capsys.readouterr().err.strip().endswith("images: interrupted")
    assert not [p for p in b.cache.iterdir() if p.name.startswith("rootfs-")]


def test_failed_build_is_one_line_and_cleans_its_context(tmp_path, capsys):
    runner = recorder(present={"base": True, "agent": False, "bundle": True})
    runner.reply("docker", "build", returncode=1, stdout="Step 3/9\nE: Unable to locate package nodejs\n")
    b = builder(tmp_path, runner)
    with pytest.raises(ImageError, match=r"docker build of bottle-agent:\w{12} failed: .*nodejs.*full log"):
        b.ensure(["agent"])
    assert not list(b.cache.glob("context-*"))
    logs = list((b.cache / "logs").glob("bottle-agent-*.log"))
    assert len(logs) == 1 and "Unable to locate package nodejs" in logs[0].read_text()


def test_main_prints_env_lines(tmp_path, capsys):
    b = builder(tmp_path, recorder(present=True))
    assert main(["all", "--print-env"], builder=b) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"^CLAUDE_BOTTLE_IMAGE=bottle-agent:[0-9a-f]{12}$", out[0])
    assert re.match(r"^BOTTLE_BUNDLE_IMAGE=bottle-bundle:[0-9a-f]{12}$", out[1])
    assert len(out) == 2
    assert main(["bundle", "--print-env"], builder=b) == 0
    assert capsys.readouterr().out.splitlines() == out[1:]


def test_main_engine_down_is_one_line_no_traceback(capsys):
    runner = RecordingRunner().reply("docker", "version", returncode=1)
    assert main(["agent"], builder=Builder(runner)) == 1
    err = capsys.readouterr().err
    assert err.startswith("images: error: docker engine not reachable")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- host-side fetches -------------------------------------------------------------

def test_wheels_build_an_sdist_only_dependency_then_retry(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("mitmproxy==11.0.2\n")
    runner = RecordingRunner()
    runner.reply("py", "-m", "pip", "download", returncode=1, times=1,
                 stderr="ERROR: No matching distribution found for pyperclip<=1.9.0,>=1.9.0\n")
    dest = fetch.bundle_wheels(runner, tmp_path / "cache", req, AMD64, python="py")
    calls = [a[3] for a in runner.argvs]
    assert calls == ["download", "wheel", "download"]
    wheel = runner.find("py", "-m", "pip", "wheel")[0].argv
    assert wheel[-1] == "pyperclip<=1.9.0,>=1.9.0" and "--no-deps" in wheel
    download = runner.argvs[0]
    assert "--only-binary=:all:" in download and "--python-version=3.11" in download
    assert "--platform=manylinux_2_36_x86_64" in download and "--abi=cp311" in download
    assert dest.is_dir() and not dest.with_name(dest.name + ".tmp").exists()
    # cached: a second call runs nothing
    runner.calls.clear()
    assert fetch.bundle_wheels(runner, tmp_path / "cache", req, AMD64, python="py") == dest
    assert runner.argvs == []


def test_wheels_give_up_when_the_built_sdist_does_not_help(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("x==1\n")
    runner = RecordingRunner().reply(
        "py", "-m", "pip", "download", returncode=1,
        stderr="ERROR: No matching distribution found for cext==1\n")
    with pytest.raises(CommandError, match="cext==1"):
        fetch.bundle_wheels(runner, tmp_path / "cache", req, AMD64, python="py")
    assert len(runner.find("py", "-m", "pip", "wheel")) == 1
    assert not list((tmp_path / "cache" / "wheels").iterdir())  # no partial dir kept


def test_npm_missing_on_host_is_a_clear_error(tmp_path):
    runner = RecordingRunner().reply("npm", returncode=127)
    with pytest.raises(ImageError, match="npm not found on the host"):
        fetch.claude_code_tarballs(runner, tmp_path, "1.0.0", AMD64)


def test_npm_pack_renames_to_fixed_names(tmp_path):
    cache = tmp_path / "cache"
    tmp = cache / "npm" / "claude-code-1.0.0-linux-x64.tmp"

    class Packer(RecordingRunner):
        def run(self, argv, **kw):
            result = super().run(argv, **kw)
            name = argv[-1].replace("@anthropic-ai/", "anthropic-ai-").replace("@", "-") + ".tgz"
            (tmp / name).write_bytes(b"t")
            return Completed(result.argv, 0, name + "\n", "")

    runner = Packer()
    dest = fetch.claude_code_tarballs(runner, cache, "1.0.0", AMD64)
    assert sorted(p.name for p in dest.iterdir()) == sorted([fetch.WRAPPER_TGZ, fetch.NATIVE_TGZ])
    assert [a[:2] for a in runner.argvs] == [("npm", "pack")] * 2


# -- rootfs safety ---------------------------------------------------------------------

def test_remove_tree_unmounts_and_refuses_live_mounts(tmp_path):
    target = tmp_path / "rootfs.partial"
    (target / "proc").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"proc {target}/proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n")
    runner = RecordingRunner()
    with pytest.raises(ImageError, match="refusing to delete"):
        rootfs.remove_tree(runner, target, mounts)
    assert runner.argvs == [("umount", "--lazy", f"{target}/proc")]
    assert target.is_dir()
    mounts.write_text("sysfs /sys sysfs rw 0 0\n")
    rootfs.remove_tree(runner, target, mounts)
    assert not target.exists()


def test_mounts_under_decodes_escapes_and_orders_deepest_first(tmp_path):
    target = tmp_path / "a b"
    target.mkdir()
    esc = str(target).replace(" ", "\\040")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"x {esc}/proc proc rw 0 0\nx {esc}/proc/sys y rw 0 0\nx {esc}x z rw 0 0\n")
    assert rootfs.mounts_under(target, mounts) == [f"{target}/proc/sys", f"{target}/proc"]


def test_trim_never_follows_a_symlink_out_of_the_rootfs(tmp_path):
    outside = tmp_path / "host-doc"
    outside.mkdir()
    (outside / "README").write_text("host file")
    fs = tmp_path / "rootfs"
    (fs / "usr/share/doc/pkg").mkdir(parents=True)
    (fs / "usr/share/doc/pkg/changelog.gz").write_text("x")
    (fs / "usr/share/doc/pkg/copyright").write_text("c")
    (fs / "usr/share/doc/evil").symlink_to(outside)  # absolute, as in a rootfs
    (fs / "usr/share/man").symlink_to(outside)
    (fs / "var/lib/apt/lists").mkdir(parents=True)
    (fs / "var/lib/apt/lists/deb.debian.org_dists_bookworm_Release").write_text("r")
    (fs / "var/lib/apt/lists/lock").write_text("")
    rootfs._finish(fs)
    assert (outside / "README").read_text() == "host file"
    assert sorted(p.name for p in (fs / "usr/share/doc/pkg").iterdir()) == ["copyright"]
    assert sorted(p.name for p in (fs / "var/lib/apt/lists").iterdir()) == ["lock"]


# -- scripts/engine.sh ------------------------------------------------------------------

def test_engine_sh_parses():
    assert subprocess.run(["bash", "-n", str(ENGINE_SH)]).returncode == 0


def stub_path(tmp_path: Path, stubs: dict[str, str]) -> Path:
    """A PATH dir with the basic tools engine.sh uses, plus the given stubs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "id", "mkdir", "dirname", "setsid", "date", "sleep",
                 "tail", "cat", "timeout", "touch", "echo", "grep", "mktemp"):
        real = shutil.which(tool)
        if real:
            (bin_dir / tool).symlink_to(real)
    for name, body in stubs.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_engine(tmp_path: Path, stubs: dict[str, str], **env: str):
    bin_dir = stub_path(tmp_path, stubs)
    full_env = {"PATH": str(bin_dir), "MARK": str(tmp_path / "up"),
                "CALLS": str(tmp_path / "calls"),
                "BOTTLE_DOCKERD_LOG": str(tmp_path / "dockerd.log"),
                "BOTTLE_DOCKERD_PIDFILE": str(tmp_path / "docker.pid"), **env}
    return subprocess.run([str(bin_dir / "bash"), str(ENGINE_SH)], env=full_env,
                          capture_output=True, text=True, timeout=30)


DOCKER_STUB = '[ -e "$MARK" ] || exit 1; echo 20.10.24'
TOOLS = {"debootstrap": "", "ip": "", "iptables": "",
         "apt-get": 'echo "apt-get $*" >> "$CALLS"'}


def test_engine_sh_does_nothing_when_docker_answers(tmp_path):
    (tmp_path / "up").touch()
    result = run_engine(tmp_path, {"docker": DOCKER_STUB, **TOOLS,
                                   "dockerd": 'echo "dockerd" >> "$CALLS"'})
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stderr
    assert not (tmp_path / "calls").exists()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="engine.sh starts dockerd only as root")


@needs_root
def test_engine_sh_starts_dockerd_and_polls_until_it_answers(tmp_path):
    result = run_engine(tmp_path, {"docker": DOCKER_STUB, **TOOLS,
                                   "dockerd": 'echo "dockerd $*" >> "$CALLS"; touch "$MARK"'})
    assert result.returncode == 0, result.stderr
    assert "starting dockerd" in result.stderr and "docker answers" in result.stderr
    # No apt-get (all tools present); /24 pools so a live run's many
    # three-network bottles fit (docker's defaults hold about 30 networks).
    assert (tmp_path / "calls").read_text() == (
        "dockerd --default-address-pool base=172.16.0.0/12,size=24\n")


@needs_root
def test_engine_sh_address_pool_can_be_overridden(tmp_path):
    result = run_engine(tmp_path, {"docker": DOCKER_STUB, **TOOLS,
                                   "dockerd": 'echo "dockerd $*" >> "$CALLS"; touch "$MARK"'},
                        BOTTLE_DOCKER_ADDRESS_POOL="base=10.99.0.0/16,size=26")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text() == (
        "dockerd --default-address-pool base=10.99.0.0/16,size=26\n")


@needs_root
def test_engine_sh_installs_missing_tools_then_starts(tmp_path):
    tools = {k: v for k, v in TOOLS.items() if k != "debootstrap"}
    result = run_engine(tmp_path, {"docker": DOCKER_STUB, **tools,
                                   "dockerd": 'echo "dockerd" >> "$CALLS"; touch "$MARK"'})
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "apt-get -o DPkg::Lock::Timeout=60 update -qq"
    assert calls[1] == ("apt-get -o DPkg::Lock::Timeout=60 install -y -qq "
                        "--no-install-recommends debootstrap")
    assert calls[2] == "dockerd"


@needs_root
def test_engine_sh_fails_with_the_log_tail_when_dockerd_never_answers(tmp_path):
    result = run_engine(tmp_path, {"docker": DOCKER_STUB, **TOOLS,
                                   "dockerd": 'echo "failed to start daemon: boom"; exit 1'},
                        BOTTLE_ENGINE_TIMEOUT="1")
    assert result.returncode == 1
    assert "failed to start daemon: boom" in result.stderr
    assert "docker engine not ready" in result.stderr


# -- scripts/apt-install.sh: waits for the dpkg lock, keeps apt quiet ---------------

APT_SH = REPO / "scripts" / "apt-install.sh"
# Fails like apt-get does while unattended-upgrades holds the lock, $LOCKED
# times (counted in $CALLS), and is chatty on stdout like the real one.
LOCKED_APT = """
echo "apt-get $*" >> "$CALLS"
echo "Reading package lists... Done"
n=$(grep -c . "$CALLS")
if [ "$n" -le "$LOCKED" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
  exit 100
fi
exit 0
"""


def run_apt(tmp_path: Path, apt_body: str, *pkgs: str, **env: str):
    bin_dir = stub_path(tmp_path, {"apt-get": apt_body})
    full_env = {"PATH": str(bin_dir), "CALLS": str(tmp_path / "calls"),
                "BOTTLE_APT_LOG": str(tmp_path / "apt.log"),
                "BOTTLE_APT_RETRY_INTERVAL": "0.05", **env}
    return subprocess.run([str(bin_dir / "bash"), str(APT_SH), *pkgs], env=full_env,
                          capture_output=True, text=True, timeout=30)


def test_apt_install_sh_parses():
    assert subprocess.run(["bash", "-n", str(APT_SH)]).returncode == 0


@needs_root
def test_apt_install_waits_for_the_dpkg_lock_and_stays_quiet(tmp_path):
    t0 = time.monotonic()
    result = run_apt(tmp_path, LOCKED_APT, "docker-registry", LOCKED="3")
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    # three retries BOTTLE_APT_RETRY_INTERVAL (0.05 s) apart, not the 2 s default
    assert took < 4.0, took
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 5  # 3 refused, then update and install
    assert calls[-1].endswith("install -y -qq --no-install-recommends docker-registry")
    assert "waiting for the dpkg/apt lock" in result.stderr
    assert result.stderr.count("waiting for") == 1  # one line, not one per retry
    assert "Reading package lists" not in result.stdout + result.stderr  # apt noise kept out
    assert "Reading package lists" in (tmp_path / "apt.log").read_text()


@needs_root
def test_apt_install_gives_up_on_a_held_lock_within_its_bound(tmp_path):
    result = run_apt(tmp_path, LOCKED_APT, "docker-registry", LOCKED="100000",
                     BOTTLE_APT_LOCK_TIMEOUT="1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("apt: error:") and "still held after 1s" in last


@needs_root
def test_apt_install_other_failures_are_not_retried(tmp_path):
    body = 'echo "apt-get $*" >> "$CALLS"; echo "E: Unable to locate package nope" >&2; exit 100'
    result = run_apt(tmp_path, body, "nope")
    assert result.returncode == 1
    assert len((tmp_path / "calls").read_text().splitlines()) == 1
    assert "Unable to locate package nope" in result.stderr  # the log tail explains it


# -- set-up: README and .ci/run (issue 11) -------------------------------------------

def test_ci_run_parses():
    assert subprocess.run(["bash", "-n", str(REPO / ".ci" / "run")]).returncode == 0


def _setup_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Set-up", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_set_up_installs_into_a_venv_never_the_system_python():
    """PEP 668: Debian's python3 refuses `pip install`; the set-up block must
    make and activate a venv before any pip, then run the two commands."""
    lines = _setup_block()
    activate = lines.index(". .venv/bin/activate")
    assert lines[0].startswith("python3 -m venv .venv")
    pips = [i for i, line in enumerate(lines) if line.startswith("pip ")]
    assert pips and all(i > activate for i in pips)
    assert "pip install -e '.[dev]'" in lines  # puts bottle-ref and bottle-conformance on PATH
    assert lines[-2:] == ["nox -s conformance", "nox -s unit"]


def test_ci_run_uses_a_venv_and_the_registry_stays_on_loopback():
    text = (REPO / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in text and ".venv/bin/python -m pip install" in text
    assert "python3 -m pip install" not in text.replace(".venv/bin/python -m pip", "")
    assert "policy-rc.d" in text  # the package's own :5000 service never starts


def test_codex_pack_fetches_wrapper_and_its_platform_package(tmp_path):
    """@openai/codex's optionalDependencies alias the platform build as
    npm:@openai/codex@<version>-<platform>: both tarballs are packed."""
    cache = tmp_path / "cache"
    tmp = cache / "npm" / "codex-1.0.0-linux-x64.tmp"

    class Packer(RecordingRunner):
        def run(self, argv, **kw):
            result = super().run(argv, **kw)
            name = argv[-1].replace("@openai/", "openai-").replace("@", "-") + ".tgz"
            (tmp / name).write_bytes(b"t")
            return Completed(result.argv, 0, name + "\n", "")

    runner = Packer()
    dest = fetch.codex_tarballs(runner, cache, "1.0.0", AMD64)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [fetch.CODEX_WRAPPER_TGZ, fetch.CODEX_NATIVE_TGZ])
    assert [a[-1] for a in runner.argvs] == ["@openai/codex@1.0.0-linux-x64", "@openai/codex@1.0.0"]


def test_agent_tag_follows_both_cli_versions():
    base = inputs.base_inputs(AMD64)
    tag = inputs.agent_inputs(base, AMD64).tag
    assert inputs.agent_inputs(base, AMD64, codex_version="0.0.1").tag != tag
    assert inputs.agent_inputs(base, AMD64, claude_version="0.0.1").tag != tag


# -- issue 17: the cache verifies content --------------------------------------------------
import io  # noqa: E402
import zipfile  # noqa: E402


def _wheel_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/__init__.py", "x = 1\n" * 200)
    return buf.getvalue()


def test_a_truncated_wheel_is_detected_and_fetched_again(tmp_path):
    """Hashes recorded at fetch, checked at use: a truncated wheel no longer
    makes every later build fail with a generic docker error."""
    runner = recorder(present={"base": True, "agent": True, "bundle": False})
    lines: list[str] = []
    b = builder(tmp_path, runner, lines=lines)
    req = tmp_path / "req.txt"
    req.write_bytes(b.plan(AMD64, ["bundle"])["bundle"].part("requirements.txt"))
    wheels = fetch.wheels_dir(b.cache, req, AMD64)
    wheels.mkdir(parents=True)
    (wheels / "pkg-1.0-py3-none-any.whl").write_bytes(_wheel_bytes())
    fetch.write_manifest(wheels)
    b.ensure(["bundle"])
    assert runner.find("*", "-m", "pip", "download") == []  # sound: used as is
    whl = wheels / "pkg-1.0-py3-none-any.whl"
    whl.write_bytes(whl.read_bytes()[:100])  # truncated
    runner.reply("*", "-m", "pip", "download")
    b.ensure(["bundle"])
    assert any("pkg-1.0-py3-none-any.whl changed since it was fetched" in line
               for line in lines), lines
    assert len(runner.find("*", "-m", "pip", "download")) == 1


def test_an_older_cache_without_hashes_is_checked_by_structure(tmp_path):
    d = tmp_path / "wheels" / "abc"
    d.mkdir(parents=True)
    (d / "ok-1.0-py3-none-any.whl").write_bytes(_wheel_bytes())
    assert fetch.damage(d) is None and fetch.manifest_path(d).is_file()  # recorded now
    fetch.manifest_path(d).unlink()
    (d / "bad-1.0-py3-none-any.whl").write_bytes(_wheel_bytes()[:50])
    assert "bad-1.0-py3-none-any.whl is damaged" in fetch.damage(d)


def test_a_zero_byte_python_in_the_rootfs_is_damage(tmp_path):
    """The rootfs check tested only that the files exist: a 0-byte
    python3.11 behind the python3 symlink passed."""
    runner = recorder(present=False)
    lines: list[str] = []
    b = builder(tmp_path, runner, lines=lines)
    base = b.plan(AMD64, ["agent"])["base"]
    fs = sound_rootfs(b.cache, base)
    (fs / "usr/bin/python3").unlink()
    (fs / "usr/bin/python3.11").write_bytes(b"\x7fELF" + b"\0" * 100)
    (fs / "usr/bin/python3").symlink_to("python3.11")
    rootfs._write_marker(fs)
    assert rootfs.damage(fs) is None
    (fs / "usr/bin/python3.11").write_bytes(b"")
    assert "usr/bin/python3" in rootfs.damage(fs)
    (fs / "usr/bin/python3.11").write_bytes(b"\x7fELF" + b"\1" * 100)  # same size, other bytes
    assert "changed since" in rootfs.damage(fs)
    b.ensure(["agent"])
    assert len(runner.find("debootstrap")) == 1
    assert any("is damaged" in line for line in lines)


def test_a_failed_build_names_the_real_cause_and_cleans_up(tmp_path):
    runner = recorder(present={"base": True, "agent": True, "bundle": False})
    runner.reply("*", "-m", "pip", "download")
    runner.reply("docker", "build", returncode=1, stdout=(
        "Step 5/9 : RUN pip install --no-index --find-links /wheels -r requirements.txt\n"
        " ---> Running in 0a1b2c3d\n"
        "Processing /wheels/mitmproxy-10.1.5-py3-none-any.whl\n"
        "ERROR: Wheel 'mitmproxy' located at /wheels/mitmproxy-10.1.5-py3-none-any.whl "
        "is invalid.\n"
        "Removing intermediate container 0a1b2c3d\n"
        "The command '/bin/sh -c pip install' returned a non-zero code: 1\n"))
    runner.reply("docker", "image", "ls", stdout="deadbeef\n")
    b = builder(tmp_path, runner)
    with pytest.raises(ImageError) as info:
        b.ensure(["bundle"])
    message = str(info.value)
    assert "\n" not in message
    assert "ERROR: Wheel 'mitmproxy'" in message and "is invalid" in message
    (build,) = builds(runner)
    assert "--force-rm" in build
    digest = b.plan(AMD64, ["bundle"])["bundle"].digest
    (ls,) = runner.find("docker", "image", "ls")
    assert "dangling=true" in ls.argv and f"label=bottle-ref.inputs={digest}" in ls.argv
    assert ("docker", "image", "rm", "deadbeef") in runner.argvs


# -- issue 18: images for another engine -----------------------------------------------


def test_export_writes_docker_save_archives_and_load_into_uses_them(tmp_path):
    from bottle_api.runner import RecordingRunner
    from bottle_ref.images.build import Builder

    class Saving(RecordingRunner):
        """Records; a `docker save -o F` leaves F behind as docker would."""

        def run(self, argv, **kw):
            result = super().run(argv, **kw)
            if list(argv[:3]) == ["docker", "save", "-o"]:
                Path(argv[3]).write_text("archive")
            return result

    runner = Saving()
    builder = Builder(runner, cache=tmp_path / "cache", say=lambda line: None)
    tags = {"agent": "bottle-agent:74b42fd9ab66", "bundle": "bottle-bundle:07d750eddf53"}
    out = tmp_path / "out"
    out.mkdir()
    paths = builder.export(tags, out)
    assert [p.name for p in paths] == ["bottle-agent-74b42fd9ab66.tar",
                                       "bottle-bundle-07d750eddf53.tar"]
    saves = [a for a in runner.argvs if a[:2] == ("docker", "save")]
    assert [a[-1] for a in saves] == list(tags.values())
    assert all(a[2] == "-o" and a[3].endswith(".partial") for a in saves)
    runner.calls.clear()
    (out / "bottle-bundle-07d750eddf53.tar").unlink()  # the agent's is kept: not redone
    builder.export(tags, out)
    assert [a[-1] for a in runner.argvs] == ["bottle-bundle:07d750eddf53"]
    runner.calls.clear()
    builder.load_into(tags, "podman")
    loads = [a for a in runner.argvs if a[0] == "podman"]
    assert [a[:3] for a in loads] == [("podman", "load", "-i")] * 2
    assert all(a[3].startswith(str(tmp_path / "cache" / "exports")) for a in loads)


def test_images_cli_refuses_a_missing_export_dir_and_docker_as_engine(tmp_path, capsys):
    from bottle_ref.images.build import main

    assert main(["all", "--export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an existing directory" in err[0]
    assert main(["all", "--engine", "docker"]) == 2
    assert "another engine" in capsys.readouterr().err
