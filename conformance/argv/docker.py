"""The docker-family grammar (docker, podman, nerdctl) and its value semantics.

Flags come from `docker_table` (generated from docker/cli's own flag
definitions, each row citing its file and line). podman and nerdctl accept
docker's flags for the subcommands the suite reads (both are
docker-compatible CLIs by design). podman's own flags for ``run``,
``create`` and ``network create`` (e.g. ``network create --disable-dns``,
``run --no-hosts``) come from `podman_table`, read from podman's source;
nerdctl's, and podman's for other subcommands, are NOT modelled: an argv
using one fails to parse, and the clauses that read it say NOT_SUPPORTED
naming the flag (`vocabulary_gap`), never PASSED.

Value semantics, each from the tool's source:

- ``-u/--user`` is a pflag ``StringVarP`` (opts.go:209, exec.go:72): given
  twice, the LAST wins; its value is ``name|uid[:group|gid]``, so ``node``
  and ``node:node`` both run as node (docker/cli opts.go passes it to the
  engine as ``Config.User``; moby splits at ':' in
  ``daemon/oci_linux.go`` getUser).
- ``--network``/``--net`` (opts.go:244-245): a network name or ``host``,
  ``none``, ``bridge``, ``container:<id>``; docker's long form
  ``name=NET,alias=A,ip=...`` (opts/network.go ``NetworkOpt.Set``) and
  podman's ``NET:alias=A,ip=...`` both name NET.
- an image is pinned by ID (``sha256:<64 hex>``) or digest (``REF@sha256:...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import docker_table as T
from . import podman_table as P
from .grammar import Command, Flag, Grammar, flags_from_rows

ENGINES = frozenset({"docker", "podman", "nerdctl"})

# Flags whose pflag kind accumulates (Var on a ListOpts/MapOpts, *Slice*):
# given twice, both count. Everything else: the last one wins.
_REPEATABLE = {"env", "env-file", "label", "label-file", "publish", "volume", "mount",
               "cap-add", "cap-drop", "security-opt", "add-host", "dns", "dns-opt",
               "dns-option", "dns-search", "expose", "link", "link-local-ip", "net-alias",
               "network-alias", "tmpfs", "volumes-from", "device", "device-cgroup-rule",
               "group-add", "sysctl", "ulimit", "log-opt", "storage-opt", "attach",
               "annotation", "opt", "filter", "subnet", "ip-range", "gateway", "aux-address", "ipam-opt",
               "alias", "driver-opt", "tag", "build-arg", "cache-from", "platform",
               "network", "net", "gpus",
               # podman's StringArray/StringSlice flags (podman_table)
               "route", "secret", "unsetenv", "uidmap", "gidmap", "requires", "env-merge",
               "chrootdirs", "hostuser", "cgroup-conf", "decryption-key", "preserve-fd"}

# (positionals min, max) and trailing shape per subcommand, from each
# command's cobra Args (cli.RequiresMinArgs / ExactArgs ...) in the same files.
_SHAPE: dict[tuple[str, ...], tuple[tuple[int, int | None], str, int]] = {
    ("run",): ((1, 1), "rest", 1),          # run.go: RequiresMinArgs(1), image then command
    ("create",): ((1, 1), "rest", 1),       # create.go: RequiresMinArgs(1)
    ("exec",): ((1, 1), "rest", 1),         # exec.go: RequiresMinArgs(2), container then command
    ("cp",): ((2, 2), "none", 0),           # cp.go: ExactArgs(2)
    ("start",): ((1, None), "none", 0),     # start.go: RequiresMinArgs(1)
    ("stop",): ((1, None), "none", 0),
    ("kill",): ((1, None), "none", 0),
    ("rm",): ((1, None), "none", 0),
    ("port",): ((1, 2), "none", 0),         # port.go: RequiresRangeArgs(1, 2)
    ("inspect",): ((1, None), "none", 0),
    ("build",): ((1, 1), "none", 0),        # build.go: ExactArgs(1)
    ("save",): ((1, None), "none", 0),
    ("load",): ((0, 0), "none", 0),         # load.go: NoArgs
    ("image", "inspect"): ((1, None), "none", 0),
    ("image", "rm"): ((1, None), "none", 0),
    ("network", "create"): ((1, 1), "none", 0),   # network/create.go: ExactArgs(1)
    ("network", "connect"): ((2, 2), "none", 0),  # network/connect.go: ExactArgs(2)
    ("network", "rm"): ((1, None), "none", 0),
    ("network", "inspect"): ((1, None), "none", 0),
    ("volume", "create"): ((0, 1), "none", 0),    # volume/create.go: RequiresMaxArgs(1)
    ("volume", "rm"): ((1, None), "none", 0),
    ("volume", "inspect"): ((1, None), "none", 0),
    # */prune.go: cli.NoArgs
    **{(kind, "prune"): ((0, 0), "none", 0)
       for kind in ("network", "volume", "container", "image", "system")},
}

# docker's management-command spellings (cli/command/commands/commands.go
# registers both `docker exec` and `docker container exec`, ...).
_ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {
    **{("container", c): (c,) for c in ("run", "create", "exec", "cp", "start", "stop",
                                         "kill", "rm", "port", "inspect")},
    ("container", "remove"): ("rm",),
    ("image", "build"): ("build",), ("image", "save"): ("save",), ("image", "load"): ("load",),
    ("image", "remove"): ("image", "rm"), ("rmi",): ("image", "rm"),
    ("network", "remove"): ("network", "rm"), ("volume", "remove"): ("volume", "rm"),
    ("buildx", "build"): ("build",),
}

# `docker --version` / `-v` (cli/cobra.go SetVersionTemplate; cmd/docker).
_BARE = (Flag("version", "v", False, source="cmd/docker/docker.go:180"),
         Flag("help", "", False))


def _command(path: tuple[str, ...], tool: str = "docker") -> Command:
    (lo, hi), trailing, head = _SHAPE[path]
    rows = T.COMMAND_FLAGS[path]
    if tool == "podman":
        rows = rows + tuple((long, short, takes, f"{P.PODMAN} {src}")
                            for long, short, takes, src in P.EXTRA_FLAGS.get(path, ()))
    flags = flags_from_rows(rows, repeatable=_REPEATABLE)
    if not any(f.long == "help" for f in flags):
        flags += (Flag("help", "", False),)
    return Command(path, flags, (lo, hi), trailing, head, trailing_required=path == ("exec",),
                   source=f"{T.DOCKER_CLI} {T.COMMAND_FLAGS[path][0][3].split(':')[0]}"
                   if T.COMMAND_FLAGS[path] else T.DOCKER_CLI)


def _grammar(tool: str) -> Grammar:
    return Grammar(tool, f"{tool} (docker CLI vocabulary, {T.DOCKER_CLI})", "pflag",
                   {p: _command(p, tool) for p in _SHAPE},
                   global_flags=flags_from_rows(T.GLOBAL_FLAGS), aliases=_ALIASES, bare=_BARE)


GRAMMARS: dict[str, Grammar] = {tool: _grammar(tool) for tool in sorted(ENGINES)}


def vocabulary_gap(tool: str) -> str | None:
    """Why a parse failure of ``tool`` may be the suite's gap, not the
    backend's: podman and nerdctl have flags of their own the suite does
    not model."""
    if tool == "podman":
        return ("the suite models docker's vocabulary for podman, plus podman's own flags "
                "for run, create and network create only (podman_table); this podman-only "
                "flag is not readable here")
    if tool == "nerdctl":
        return (f"the suite models only docker's vocabulary for {tool}; a {tool}-only "
                "flag is not readable here")
    return None


# -- values ---------------------------------------------------------------------------


def user_name(value: str) -> str:
    """The user part of ``-u`` (``node:node`` -> ``node``; ``1000:1000`` -> ``1000``)."""
    return value.split(":", 1)[0]


@dataclass(frozen=True)
class NetworkRef:
    """One ``--network`` value: the network ``name`` and its options."""

    name: str
    options: tuple[tuple[str, str], ...] = ()


def parse_network(value: str, tool: str = "docker") -> NetworkRef:
    """One ``--network`` value as ``tool`` reads it.

    docker (opts/network.go:43 ``NetworkOpt.Set``): when the value matches
    ``\\w+=\\w+(,\\w+=\\w+)*`` anywhere it is the long CSV syntax
    (``name=NET,alias=A,ip=...``, keys case-insensitive), else the whole
    value is the network. podman (docs ``--network``, ``NET:alias=A,ip=...``)
    and nerdctl: the name ends at ':'. ``container:ID`` is kept whole (it
    names another container's namespace)."""
    if value.startswith("container:"):
        return NetworkRef(value)
    if tool == "docker":
        if re.search(r"\w+=\w+(,\w+=\w+)*", value):
            kv = [tuple(p.split("=", 1)) for p in value.split(",") if "=" in p]
            kv = [(k.strip().lower(), v.strip()) for k, v in kv]
            name = next((v for k, v in kv if k == "name"), "")
            return NetworkRef(name, tuple((k, v) for k, v in kv if k != "name"))
        return NetworkRef(value)
    name, _, rest = value.partition(":")
    opts = tuple((k, v) for k, _, v in (p.partition("=") for p in rest.split(",") if "=" in p))
    return NetworkRef(name, opts)


HOST_NAMESPACE_FLAGS = ("network", "net", "pid", "ipc", "userns", "uts", "cgroupns")

_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")


def image_pinned(ref: str) -> bool:
    """An image given by ID (``sha256:<hex>``) or by digest (``REF@sha256:<hex>``)."""
    if _IMAGE_ID.fullmatch(ref):
        return True
    return bool(re.fullmatch(r".+@sha256:[0-9a-f]{64}", ref))


def image_matches(ref: str, wanted: str) -> bool:
    """``ref`` names the image ``wanted``: equal, or the same repository at
    any tag/digest, or an ID (which only the engine could resolve: True
    only when ``wanted`` is that ID)."""
    if ref == wanted:
        return True
    def repo(r: str) -> str:
        r = r.split("@", 1)[0]
        last = r.rsplit("/", 1)[-1]
        return r[: len(r) - len(last)] + last.split(":", 1)[0]
    return not _IMAGE_ID.fullmatch(ref) and repo(ref) == repo(wanted)
