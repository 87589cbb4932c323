"""The image builder's registry route against a real engine and a real
registry on loopback (Debian's ``docker-registry``, listening on 127.0.0.1
only), serving the debootstrap base, so both routes are tested here: the
debootstrap route made the base (nox builds the images first), the
registry route builds FROM it after a pull. Two builds run at once from one
cache, as two terminals or two CI jobs would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bottle_ref.images.build import default_cache
from bottle_ref.images.inputs import Arch, base_inputs

from conformance.live.resources import run_tag

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
BUILD_TIMEOUT = 1800  # seconds, per build process (a cold base + bundle is minutes)


def docker(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    """A docker-registry on 127.0.0.1:<free port>; yields ``host:port``."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("ERROR: docker-registry is not installed (apt-get install docker-registry; "
                    ".ci/run does)")
    port = _free_loopback_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'registry-data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n")
    log = open(tmp_path / "registry.log", "w")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded poll until /v2/ answers
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("docker-registry did not answer: "
                                     + (tmp_path / "registry.log").read_text()[-500:])
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _seed_cache(cache: Path) -> None:
    """The host-side fetches (bundle wheels) from the user's cache, so the
    test exercises the builder, not PyPI; links where the filesystem allows."""
    src = default_cache() / "wheels"
    if src.is_dir():
        (cache / "wheels").mkdir(parents=True, exist_ok=True)
        for d in src.iterdir():
            if d.is_file():  # a folder's sha256 manifest, `<folder>.sha256`, beside it
                shutil.copy2(d, cache / "wheels" / d.name)
                continue
            dest = cache / "wheels" / d.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in d.iterdir():
                try:
                    os.link(f, dest / f.name)
                except OSError:
                    shutil.copy2(f, dest / f.name)


def test_registry_route_two_builds_at_once_from_a_loopback_registry(registry, tmp_path):
    arch = Arch.from_docker(docker("version", "--format", "{{.Server.Arch}}").stdout.strip())
    debootstrap_base = base_inputs(arch).tag
    if docker("image", "inspect", debootstrap_base, check=False).returncode != 0:
        pytest.skip(f"ERROR: {debootstrap_base} (the debootstrap route's base) is not in the "
                    "engine; run `python -m bottle_ref.images all` as root first")
    ref = f"{registry}/bottle-test/debian:bookworm-{run_tag()}"
    docker("tag", debootstrap_base, ref)
    docker("push", ref)
    docker("rmi", ref)  # only the tag: the builder must pull it back
    cache_home = tmp_path / "xdg-cache"
    _seed_cache(cache_home / "bottle-ref")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONUNBUFFERED": "1"}
    env.pop("BOTTLE_BASE_IMAGE", None)
    argv = [sys.executable, "-m", "bottle_ref.images", "bundle", "--base", ref, "--print-env"]
    made: set[str] = set()
    try:
        start = time.monotonic()
        procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=BUILD_TIMEOUT) for p in procs]
        elapsed = time.monotonic() - start
        print(f"two concurrent registry-route builds: {elapsed:.0f}s")
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err
            made |= {line.split("=", 1)[1] for line in out.splitlines() if "=" in line}
        (tag,) = {out.strip() for out, _ in outs}  # both print the same image
        bundle = tag.split("=", 1)[1]
        errs = [err for _, err in outs]
        builder_err = next(e for e in errs if f"build {bundle}" in e)
        waiter_err = next(e for e in errs if e is not builder_err)
        assert f"FROM {ref}" in builder_err  # the base came from the registry image
        assert "waiting for another build" in waiter_err
        assert f"images: {bundle} up to date" in waiter_err  # and found it made
        base_tag = next(w for w in builder_err.split() if w.startswith("bottle-base:"))
        made.add(base_tag)
        assert base_tag != debootstrap_base
        # The pulled registry base really is the parent: its ID is in the
        # bundle's history, and the bundle runs.
        base_id = docker("image", "inspect", "--format", "{{.Id}}", base_tag).stdout.strip()
        history = docker("history", "--no-trunc", "--format", "{{.ID}}", bundle).stdout.split()
        assert base_id in history
        run = docker("run", "--rm", "--network", "none", "--entrypoint", "python3", bundle,
                     "-c", "import bottle_bundle, yaml; print('ok')")
        assert run.stdout.strip() == "ok"
        assert not list((cache_home / "bottle-ref").glob("context-*"))
    finally:
        for image in sorted(made) + [ref]:
            docker("rmi", image, check=False)
