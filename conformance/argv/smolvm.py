"""The smolvm grammar a backend may use, per supported version (>= 1.8).

Read from smolvm's own clap definitions (github.com/smol-machines/smolvm,
tags v1.8.0 ... v1.9.3). Each row cites ``file:line`` at v1.9.3 (the
newest stored release) and the version range it holds for; rows were
compared field by field across every tag from v1.8.0 to v1.9.3, and only
the differences noted with ``since`` exist in that range.

Facts the table encodes (and `tests/unit/test_argv.py` checks one by one):

- ``machine create`` takes the name as ``-n/--name`` (machine.rs:2925);
  its workload command is ``last = true`` (machine.rs:3099), so it needs
  ``--`` and a bare positional (an old-style ``machine create NAME``) is
  rejected. ``--network`` exists since v1.8.3 (machine.rs:2997).
- ``machine exec`` takes ``--name`` only (no ``-n``: machine.rs:2632,
  ``#[arg(long)]``), ``-e/--env`` repeatable, ``-w``, ``-i``, ``-t``; its
  command is ``trailing_var_arg`` + required (machine.rs:2628): the first
  positional (or what follows ``--``) starts the command.
- ``machine start/stop`` take ``-n/--name`` (machine.rs:3592, 3952);
  ``machine delete`` (alias ``rm``, machine.rs:344) REQUIRES ``-n/--name``
  (machine.rs:3976, a ``String``, not an ``Option``).
- ``machine cp SRC DST``: exactly two positionals, one of them
  ``machine:path`` (machine.rs:4888-4893, 4926-4937); an upload opens SRC
  with ``File::open`` and streams it (machine.rs:4973): one regular file,
  no directory copy. ``--mode/--uid/--gid`` exist since v1.9.0
  (machine.rs:4896-4905).
- ``pack create -I IMAGE -o OUT`` (pack.rs:81-101): no positional image
  (the doc comment's ``pack create alpine:latest`` examples are stale:
  the struct has no positional field); OUT names the executable stub and
  the artifact is ``OUT.smolmachine`` (pack.rs:186-203, "--output names
  the EXECUTABLE stub"); ``--single-file`` writes no sidecar (pack.rs:129).
- ``pack create -o X.smolmachine`` is refused (pack.rs:189-203, QA
  BUG-139): the extension belongs to the sidecar.
- ``smolvm --version`` / ``-V``: clap's ``#[command(version)]`` (main.rs:18).
- ``--allow-cidr`` is parsed by ``parse_cidr`` (a bare IP becomes ``/32``:
  parsers.rs:173-176), ``--allow-host`` names are resolved to CIDRs, and
  ``--outbound-localhost-only`` adds 127.0.0.0/8 and ::1/128; any allow
  entry implies ``--net`` (machine.rs:82-100 ``resolve_egress_flags``).
- ``machine create --mount-socket HOST_PATH:GUEST_PATH`` (machine.rs:3038,
  repeatable; since v1.6.4, commit b310083f) bridges a guest Unix socket to
  a host one over vsock (``parse_published_sockets``, machine.rs:138-240).
- Networking: ``--net``, ``--net-backend``, ``--dns``, ``--network``,
  ``-p/--port`` and every allow entry make smolvm attach a network backend
  (src/network/launch.rs ``plan_launch_network``, ``wants_network``);
  `NETWORK_FLAGS` lists them (SMOLVM-NO-NET).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .grammar import Command, Flag, Grammar

TOOL = "smolvm"
REPO = "smol-machines/smolvm"
SUPPORTED = ("1.8.0", "1.8.1", "1.8.2", "1.8.3", "1.9.0", "1.9.1", "1.9.2", "1.9.3")
MINIMUM = SUPPORTED[0]
NEWEST = SUPPORTED[-1]
# The hole a version check guards: on 0.8.x to 1.7.x, `machine create --from F
# --allow-cidr C` parses --allow-cidr and drops it (unrestricted outbound);
# fixed by commit f8a6fa62 "preserve egress policy for --from", first in v1.8.0.
EGRESS_FIX = ("1.8.0", "f8a6fa62")
# Flags that give a machine networking (1.9.3 src/network/launch.rs:102
# `wants_network = resources.network || has_ports || has_cidr_policy ||
# has_dns_filter || has_fabric`; --dns and --net-backend imply --net,
# machine.rs:2988-2998). SMOLVM-NO-NET refuses every one.
NETWORK_FLAGS = ("net", "net-backend", "dns", "network", "allow-cidr", "allow-host",
                 "outbound-localhost-only", "port")
MOUNT_SOCKET_SINCE = ("1.6.4", "b310083f")


def _v(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


@dataclass(frozen=True)
class Row:
    """One flag: long name, short, takes a value, repeatable, source
    (``file:line`` at v1.9.3), and the first version it exists in."""

    long: str
    short: str
    takes_value: bool
    repeatable: bool
    source: str
    since: str = MINIMUM

    def flag(self) -> Flag:
        return Flag(self.long, self.short, self.takes_value, self.repeatable,
                    f"{REPO} v{NEWEST} {self.source} (since v{self.since})")


M, P, X = "src/cli/machine.rs", "src/cli/pack.rs", "src/cli/proxy_opts.rs"

_PROXY = (Row("proxy", "", True, False, f"{X}:14"), Row("no-proxy", "", True, False, f"{X}:19"))

ROWS: dict[tuple[str, ...], tuple[Row, ...]] = {
    ("machine", "create"): (
        Row("name", "n", True, False, f"{M}:2926"),
        Row("label", "", True, True, f"{M}:2936"),
        Row("image", "I", True, False, f"{M}:2943"),
        Row("max-image-size", "", True, False, f"{M}:2950"),
        Row("cpus", "", True, False, f"{M}:2954"),
        Row("mem", "", True, False, f"{M}:2958"),
        Row("storage", "", True, False, f"{M}:2962"),
        Row("overlay", "", True, False, f"{M}:2966"),
        Row("volume", "v", True, True, f"{M}:2976"),
        Row("port", "p", True, True, f"{M}:2980"),
        Row("net", "", False, False, f"{M}:2984"),
        Row("net-backend", "", True, False, f"{M}:2988"),
        Row("dns", "", True, False, f"{M}:2993"),
        Row("network", "", True, False, f"{M}:2998", since="1.8.3"),
        Row("allow-cidr", "", True, True, f"{M}:3002"),
        Row("allow-host", "", True, True, f"{M}:3006"),
        Row("outbound-localhost-only", "", False, False, f"{M}:3010"),
        Row("gpu", "", False, False, f"{M}:3014"),
        Row("gpu-vram", "", True, False, f"{M}:3018-3023"),
        Row("rosetta", "", False, False, f"{M}:3027"),
        Row("expose-socket", "", True, True, f"{M}:3033"),
        # HOST_PATH:GUEST_PATH, repeatable; since v1.6.4 (b310083f, "add
        # --expose-socket and --mount-socket"), so in every supported version.
        Row("mount-socket", "", True, True, f"{M}:3038"),
        Row("init", "", True, True, f"{M}:3042"),
        Row("env", "e", True, True, f"{M}:3046"),
        Row("workdir", "w", True, False, f"{M}:3050"),
        Row("ssh-agent", "", False, False, f"{M}:3054"),
        Row("cuda", "", False, False, f"{M}:3058"),
        Row("auto-graph", "", False, False, f"{M}:3063"),
        Row("docker-socket", "", False, False, f"{M}:3068"),
        Row("secret-env", "", True, True, f"{M}:3073"),
        Row("secret-file", "", True, True, f"{M}:3078"),
        Row("smolfile", "s", True, False, f"{M}:3082"),
        Row("from", "", True, False, f"{M}:3087"),
    ),
    ("machine", "start"): (
        Row("name", "n", True, False, f"{M}:3593"),
        Row("forkable", "", False, False, f"{M}:3598"),
        Row("fork-pool-size", "", True, False, f"{M}:3605"),
        Row("cuda-vram-limit-mib", "", True, False, f"{M}:3610"),
        *_PROXY,
    ),
    ("machine", "stop"): (Row("name", "n", True, False, f"{M}:3953"),),
    ("machine", "delete"): (
        Row("name", "n", True, False, f"{M}:3977"),
        Row("force", "f", False, False, f"{M}:3981"),
        Row("cascade", "", False, False, f"{M}:3987"),
    ),
    ("machine", "exec"): (
        Row("name", "", True, False, f"{M}:2633"),
        Row("workdir", "w", True, False, f"{M}:2637"),
        Row("env", "e", True, True, f"{M}:2641"),
        Row("secret-env", "", True, True, f"{M}:2646"),
        Row("secret-file", "", True, True, f"{M}:2651"),
        Row("timeout", "", True, False, f"{M}:2655"),
        Row("interactive", "i", False, False, f"{M}:2659"),
        Row("tty", "t", False, False, f"{M}:2663"),
        Row("stream", "", False, False, f"{M}:2667"),
        Row("detach", "d", False, False, f"{M}:2674"),
    ),
    ("machine", "cp"): (
        Row("mode", "", True, False, f"{M}:4897", since="1.9.0"),
        Row("uid", "", True, False, f"{M}:4901", since="1.9.0"),
        Row("gid", "", True, False, f"{M}:4905", since="1.9.0"),
    ),
    ("machine", "ls"): (
        Row("verbose", "v", False, False, f"{M}:4109"),
        Row("json", "", False, False, f"{M}:4113"),
    ),
    ("pack", "create"): (
        Row("image", "I", True, False, f"{P}:88"),
        Row("from-vm", "", True, False, f"{P}:92"),
        Row("rebase-from-image", "", False, False, f"{P}:96"),
        Row("output", "o", True, False, f"{P}:100"),
        Row("cpus", "", True, False, f"{P}:104"),
        Row("mem", "", True, False, f"{P}:108"),
        Row("oci-platform", "", True, False, f"{P}:115"),
        Row("entrypoint", "", True, False, f"{P}:119"),
        Row("no-sign", "", False, False, f"{P}:123"),
        Row("single-file", "", False, False, f"{P}:130"),
        Row("stub", "", True, False, f"{P}:134"),
        Row("lib-dir", "", True, False, f"{P}:138"),
        Row("rootfs-dir", "", True, False, f"{P}:142"),
        Row("smolfile", "s", True, False, f"{P}:146"),
        Row("gpu", "", False, False, f"{P}:154"),
        Row("staging-dir", "", True, False, f"{P}:161"),
        *_PROXY,
    ),
}

# (positionals, trailing, head, trailing required, source) per command.
_SHAPE = {
    ("machine", "create"): ((0, 0), "dashdash", 0, False, f"{M}:3099 (last = true)"),
    ("machine", "start"): ((0, 0), "none", 0, False, f"{M}:3590"),
    ("machine", "stop"): ((0, 0), "none", 0, False, f"{M}:3950"),
    ("machine", "delete"): ((0, 0), "none", 0, False, f"{M}:3974"),
    ("machine", "exec"): ((0, 0), "rest", 0, True, f"{M}:2628 (trailing_var_arg, required)"),
    ("machine", "cp"): ((2, 2), "none", 0, False, f"{M}:4886"),
    ("machine", "ls"): ((0, 0), "none", 0, False, f"{M}:4106"),
    ("pack", "create"): ((0, 0), "none", 0, False, f"{P}:79"),
}

# Required flags (clap rejects the call without them).
REQUIRED = {("machine", "delete"): ("name",), ("pack", "create"): ("output",)}

ALIASES = {("machine", "rm"): ("machine", "delete"), ("machine", "list"): ("machine", "ls"),
           **{("vm", c): ("machine", c) for c in ("create", "start", "stop", "delete", "rm",
                                                  "exec", "cp", "ls", "list")}}
ALIASES[("vm", "rm")] = ("machine", "delete")
ALIASES[("vm", "list")] = ("machine", "ls")

_BARE = (Flag("version", "V", False, source=f"{REPO} src/main.rs:18 (#[command(version)])"),
         Flag("help", "h", False))


def grammar(version: str) -> Grammar:
    """The grammar of smolvm ``version`` (one of `SUPPORTED`)."""
    if version not in SUPPORTED:
        raise ValueError(f"smolvm {version} is not a supported version ({', '.join(SUPPORTED)})")
    v = _v(version)
    commands = {}
    for path, rows in ROWS.items():
        (lo, hi), trailing, head, required, src = _SHAPE[path]
        flags = tuple(r.flag() for r in rows if _v(r.since) <= v) + (Flag("help", "h", False),)
        commands[path] = Command(path, flags, (lo, hi), trailing, head, required,  # type: ignore[arg-type]
                                 required_flags=REQUIRED.get(path, ()),
                                 source=f"{REPO} v{NEWEST} {src}")
    return Grammar(TOOL, f"smolvm {version}", "clap", commands, aliases=ALIASES, bare=_BARE)


GRAMMARS = {v: grammar(v) for v in SUPPORTED}


def parse_version(stdout: str) -> str | None:
    """``smolvm 1.9.3`` (clap's version line) -> ``1.9.3``."""
    m = re.search(r"(\d+\.\d+\.\d+)", stdout or "")
    return m.group(1) if m else None


def is_version_check(argv) -> bool:
    from .grammar import prog
    return prog(argv) == TOOL and len(argv) == 2 and argv[1] in ("--version", "-V")


def sidecar_of(output: str) -> str:
    """The artifact ``pack create -o OUT`` writes (pack.rs:186-203)."""
    return f"{output}.smolmachine"


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """``machine:path`` -> (machine, path); a local path -> (None, path).
    smolvm splits at the FIRST ':' (machine.rs:4926 ``split_once(':')``)."""
    name, sep, path = arg.partition(":")
    return (name, path) if sep else (None, arg)
