"""The bottle spec: what a user writes in YAML, as frozen dataclasses.

`load_spec` / `parse_spec` turn a YAML file into a `BottleSpec` or raise a
`SpecError` that names the file, the key path and the line.
"""

from __future__ import annotations

import difflib
import errno
import os
import pwd
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .conventions import DEFAULT_CPUS, DEFAULT_MEMORY_MIB, DEFAULT_PIDS

AgentKind = Literal["claude", "codex"]
DEFAULT_IMAGE = "claude-bottle:latest"
IMAGE_ENV = "CLAUDE_BOTTLE_IMAGE"


class SpecError(ValueError):
    """Bad user input. ``str()`` is one line: ``file:line: key.path: message``."""

    def __init__(self, message: str, *, file: str = "<spec>", key: str = "",
                 line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class Route:
    """An egress route: requests to ``host`` get the real token from ``token_env``."""

    host: str
    token_env: str
    header: str = "Authorization"
    scheme: str = "Bearer"


@dataclass(frozen=True)
class Upstream:
    """A git upstream fronted by git-gate."""

    name: str
    url: str
    identity: str | None = None


@dataclass(frozen=True)
class GitUser:
    name: str | None = None
    email: str | None = None

    def is_empty(self) -> bool:
        return not self.name and not self.email

    def fields(self) -> tuple[tuple[str, str], ...]:
        """``(key, value)`` for each set field, in git's order: name, email."""
        return tuple((k, v) for k, v in (("name", self.name), ("email", self.email)) if v)


@dataclass(frozen=True)
class Limits:
    """The guest's resource limits (spec key ``limits``; issue 16): memory in
    MiB, the number of processes/threads, CPUs (may be fractional)."""

    memory_mib: int = DEFAULT_MEMORY_MIB
    pids: int = DEFAULT_PIDS
    cpus: float = DEFAULT_CPUS


# Bounds a spec's limits must stay within (a typo like 4 for 4096 MiB or a
# pids limit too low to start the agent is refused, never run).
LIMIT_BOUNDS = {"memory_mib": (256, 1 << 20), "pids": (64, 1 << 22), "cpus": (0.1, 1024.0)}


@dataclass(frozen=True)
class BottleSpec:
    name: str
    agent: AgentKind = "claude"
    image: str | None = None
    prompt: str = ""
    skills: tuple[Path, ...] = ()
    cwd: Path | None = None
    git_user: GitUser = field(default_factory=GitUser)
    upstreams: tuple[Upstream, ...] = ()
    routes: tuple[Route, ...] = ()
    allow: tuple[str, ...] = ()
    tls_passthrough: tuple[str, ...] = ()
    forward_host_credentials: bool = False
    supervise: bool = False
    limits: Limits = field(default_factory=Limits)
    # Where the spec came from, for error messages raised after loading
    # (e.g. an undefined token_env at launch). Not part of equality.
    source: str = field(default="<spec>", compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def error(self, key: str, message: str) -> SpecError:
        """A `SpecError` pointing at ``key`` (a dotted path) in the source file."""
        return SpecError(message, file=self.source, key=key, line=self.lines.get(key))




# -- loading -----------------------------------------------------------------
#
# The spec is parsed from the YAML *node* tree (yaml.compose), never through a
# constructor: nodes carry line marks for every key, and no YAML tag can ever
# turn into an object. Anything odd is a `SpecError`, never a traceback.

MAX_SPEC_BYTES = 1 << 20  # a spec is a page of YAML; bigger is a mistake or an attack
MAX_DEPTH = 16  # the schema nests 4 deep; deep nesting only exhausts the stack

NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# <state_root>/<bottle> is a bottle's state dir and <state_root>/bottles the
# CLI's registry; a bottle named "bottles" would delete the registry on close.
RESERVED_NAMES = frozenset({"bottles"})
UPSTREAM_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_HTTP_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token

AGENTS = ("claude", "codex")
TOP_KEYS = ("name", "agent", "image", "prompt", "skills", "cwd", "git_user", "git",
            "egress", "forward_host_credentials", "supervise", "limits")
LIMIT_KEYS = ("memory_mib", "pids", "cpus")
GIT_USER_KEYS = ("name", "email")
GIT_KEYS = ("upstreams",)
UPSTREAM_KEYS = ("name", "url", "identity")
EGRESS_KEYS = ("routes", "allow", "tls_passthrough")
ROUTE_KEYS = ("host", "token_env", "header", "scheme")

_TAG = "tag:yaml.org,2002:"
_KIND = {"str": "a string", "bool": "a boolean", "int": "an integer", "float": "a number",
         "null": "null", "seq": "a list", "map": "a mapping", "timestamp": "a timestamp",
         "binary": "binary data", "set": "a set", "omap": "an ordered map",
         "pairs": "a list of pairs"}


def load_spec(path: str | Path) -> BottleSpec:
    """Read and validate the spec file at ``path``.

    Relative ``skills`` and ``cwd`` resolve against the file's directory. The
    size is checked before reading so a huge or endless file is refused cheaply.
    """
    return load_spec_with_text(path)[0]


def load_spec_with_text(path: str | Path) -> tuple[BottleSpec, str]:
    """`load_spec`, plus the exact text parsed (one read: the CLI keeps the
    text in its state file, and a second read could see another file)."""
    source = str(path)
    p = Path(path)
    try:
        data = _read_regular(p, source)
    except SpecError:
        raise
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", file=source) from None
    except ValueError as exc:  # NUL in the path itself
        raise SpecError(f"cannot read spec: {exc}", file=source) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(_too_big(), file=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                        file=source, line=line) from None
    return parse_spec(text, source=source, base_dir=p.absolute().parent), text


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))


def _kind_of(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def _read_regular(p: Path, source: str) -> bytes:
    """The bytes of regular file ``p``; anything else is refused before it
    is opened (a FIFO would block the open, /dev/zero never ends). Opened
    with O_NONBLOCK and checked again on the descriptor, so a file swapped
    for a FIFO between the two checks cannot hang us either."""
    st = os.stat(p)
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"cannot read spec: is {_kind_of(st.st_mode)}, not a regular file",
                        file=source)
    if st.st_size > MAX_SPEC_BYTES:
        raise SpecError(_too_big(st.st_size), file=source)
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SpecError(f"cannot read spec: is {_kind_of(mode)}, not a regular file",
                            file=source)
        return f.read(MAX_SPEC_BYTES + 1)


def parse_spec(text: str, *, source: str = "<spec>", base_dir: Path | None = None) -> BottleSpec:
    """Validate YAML ``text`` into a `BottleSpec`.

    ``source`` names the text in errors and in ``BottleSpec.source``;
    ``base_dir`` (default: the current directory) anchors relative paths.
    """
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(_too_big(len(text)), file=source)
    text = text.removeprefix("\ufeff")
    root = _compose(text, source)
    if root is None:
        raise SpecError("spec is empty (expected a YAML mapping with at least 'name')", file=source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _SpecReader(source, base.absolute()).read(root)


def _too_big(size: int | None = None) -> str:
    got = f"{size} bytes; " if size is not None else ""
    return f"spec too large ({got}the limit is 1 MiB)"


def _line(node_or_mark) -> int:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return mark.line + 1


def _render(segments: list) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg:
            out += f".{seg}" if out else seg
    return out


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Rejected(Exception):
    """Raised inside the loader; turned into a `SpecError` by `_compose`."""

    def __init__(self, message: str, key: str, mark):
        super().__init__(message)
        self.message, self.key, self.mark = message, key, mark


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (alias bombs), duplicate keys
    and absurd nesting, and knows the key path of the node it is composing."""

    def __init__(self, stream):
        super().__init__(stream)
        self._path: list = []

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(parent, MappingNode) and index is not None:
            seg = index.value if isinstance(index, ScalarNode) else "<complex key>"
        elif isinstance(index, int):
            seg = index
        else:
            seg = None  # the root, or a mapping key being composed
        self._path.append(seg)
        try:
            here = _render(self._path)
            if isinstance(event, AliasEvent):
                raise _Rejected(f"YAML aliases (*{event.anchor}) are not allowed in a spec",
                                here, event.start_mark)
            if getattr(event, "anchor", None) is not None:
                raise _Rejected(f"YAML anchors (&{event.anchor}) are not allowed in a spec",
                                here, event.start_mark)
            if len(self._path) > MAX_DEPTH:
                raise _Rejected(f"nested more than {MAX_DEPTH} levels deep", here,
                                event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                continue  # reported as "keys must be strings" by the reader
            ident = (key.tag, key.value)
            if ident in seen:
                raise _Rejected(f"duplicate key '{key.value}' (first defined on line {seen[ident]})",
                                _render(self._path + [key.value]), key.start_mark)
            seen[ident] = _line(key)
        return node


def _compose(text: str, source: str) -> Node | None:
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader rejects control characters here
        if not loader.check_node():
            return None
        node = loader.get_node()
        if loader.check_node():
            mark = loader.peek_event().start_mark
            raise SpecError("more than one YAML document; a spec is exactly one mapping",
                            file=source, line=_line(mark))
        return node
    except _Rejected as exc:
        raise SpecError(_one_line(exc.message), file=source, key=_one_line(exc.key),
                        line=_line(exc.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = _one_line(exc.problem or "invalid YAML")
        if exc.context:
            detail += f" ({_one_line(exc.context)})"
        raise SpecError(f"YAML syntax error: {detail}", file=source,
                        line=_line(mark) if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SpecError(f"YAML syntax error: unacceptable character #x{exc.character:04x}"
                        if isinstance(exc.character, int)
                        else f"YAML syntax error: {_one_line(exc.reason)}",
                        file=source, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {_one_line(exc)}", file=source) from None
    except RecursionError:
        raise SpecError("YAML nested too deeply", file=source) from None
    finally:
        if loader is not None:
            loader.dispose()


def _kind(node: Node) -> str:
    tag = node.tag
    if tag.startswith(_TAG):
        return _KIND.get(tag[len(_TAG):], f"a value tagged !!{tag[len(_TAG):]}")
    return f"a value tagged {tag}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# What Codex's skill loader accepts (codex-rs core-skills/src/loader.rs,
# parse_skill_file / extract_frontmatter / validate_len; checked with the
# pinned Codex 0.169.0, which logs "failed to load skill ... missing YAML
# frontmatter delimited by ---" or "missing field `description`" and leaves
# the skill out). Claude Code has no such rule here, so only a codex bottle
# is refused.
CODEX_SKILL_FILE = "SKILL.md"
CODEX_SKILL_MAX_NAME = 64
CODEX_SKILL_MAX_DESCRIPTION = 1024
_CODEX_SKILL_MAX_BYTES = 1024 * 1024


def codex_skill_problem(skill_dir: Path) -> str | None:
    """Why Codex would not load the skill in ``skill_dir``, or None: it
    needs ``SKILL.md`` opening with YAML front matter between ``---`` lines
    whose mapping has a non-empty ``description`` (at most 1024 characters)
    and a ``name`` (default: the directory's name) of at most 64."""
    path = skill_dir / CODEX_SKILL_FILE
    try:
        if not path.is_file():
            return f"{path} is missing (Codex loads a skill from its {CODEX_SKILL_FILE})"
        with open(path, "rb") as fh:
            raw = fh.read(_CODEX_SKILL_MAX_BYTES + 1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if len(raw) > _CODEX_SKILL_MAX_BYTES:
        return f"{path} is larger than 1 MiB"
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return f"{path} is not UTF-8"
    if not lines or lines[0].strip() != "---":
        return f"{path} does not open with YAML front matter ('---' on its first line)"
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration:
        return f"{path}: the front matter has no closing '---' line"
    if end == 1:
        return f"{path}: the front matter is empty"
    loader = _StrictLoader("\n".join(lines[1:end]))  # no aliases: no alias bombs
    try:
        node = loader.get_single_node()
        meta = loader.construct_document(node) if node is not None else None
    except _Rejected as exc:
        return f"{path}: front matter: {exc.message}"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (front matter line {mark.line + 1})" if mark is not None else ""
        return f"{path}: the front matter is not valid YAML{at}"
    finally:
        loader.dispose()
    if not isinstance(meta, dict):
        return f"{path}: the front matter is not a YAML mapping"

    def single_line(key: str) -> str | None:
        value = meta.get(key)
        return None if value is None else " ".join(str(value).split())

    description = single_line("description")
    if not description:
        return f"{path}: the front matter has no 'description'"
    if len(description) > CODEX_SKILL_MAX_DESCRIPTION:
        return (f"{path}: 'description' is longer than {CODEX_SKILL_MAX_DESCRIPTION} "
                "characters")
    name = single_line("name") or skill_dir.name
    if len(name) > CODEX_SKILL_MAX_NAME:
        return f"{path}: the skill name is longer than {CODEX_SKILL_MAX_NAME} characters"
    return None


class _SpecReader:
    """Walks the composed node tree, checking types and recording lines."""

    def __init__(self, source: str, base_dir: Path):
        self.source = source
        self.base_dir = base_dir
        self.lines: dict[str, int] = {}
        self.skill_nodes: list[tuple[Path, Node, str]] = []  # (dir, node, key path)

    # -- primitives ----------------------------------------------------------
    def fail(self, path: str, message: str, node: Node | None) -> SpecError:
        # Keys and values can hold newlines (quoted YAML); the error stays one line.
        return SpecError(_one_line(message), file=self.source, key=_one_line(path),
                         line=_line(node) if node is not None else None)

    def mapping(self, node: Node, path: str, allowed: tuple[str, ...]) -> list[tuple[str, Node, Node]]:
        """``(key, key_node, value_node)`` in document order; unknown keys fail."""
        if not isinstance(node, MappingNode) or node.tag != _TAG + "map":
            what = "the spec" if not path else "this"
            raise self.fail(path, f"{what} must be a mapping, got {_kind(node)}", node)
        out = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _TAG + "str":
                raise self.fail(path, f"keys must be strings, got {_kind(key_node)}", key_node)
            key = key_node.value
            here = _join(path, key)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (f"did you mean '{close[0]}'?" if close
                        else f"expected one of: {', '.join(allowed)}")
                raise self.fail(here, f"unknown key '{_one_line(key)[:60]}' ({hint})", key_node)
            self.lines[here] = _line(key_node)
            out.append((key, key_node, value_node))
        return out

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        if self.is_null(node):
            return None
        if not isinstance(node, SequenceNode) or node.tag != _TAG + "seq":
            raise self.fail(path, f"must be a list, got {_kind(node)}", node)
        for i, item in enumerate(node.value):
            self.lines[f"{path}[{i}]"] = _line(item)
        return list(node.value)

    @staticmethod
    def is_null(node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _TAG + "null"

    def string(self, node: Node, path: str, *, optional: bool = True,
               nonempty: bool = True) -> str | None:
        if optional and self.is_null(node):
            return None
        if not isinstance(node, ScalarNode) or node.tag != _TAG + "str":
            shown = f" {node.value!r}" if isinstance(node, ScalarNode) else ""
            # A plain 123 / yes / 2024-01-01 was read as another type: quoting fixes it.
            hint = (" (quote it)" if isinstance(node, ScalarNode) and node.style is None
                    and node.tag.startswith(_TAG) else "")
            raise self.fail(path, f"must be a string, got {_kind(node)}{shown}{hint}", node)
        if nonempty and not node.value.strip():
            raise self.fail(path, "must not be empty", node)
        try:
            node.value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a "\ud800" escape: no file, env or argv takes it
            raise self.fail(path, f"contains a lone surrogate (U+{ord(node.value[exc.start]):04X}), "
                                  "which is not valid Unicode", node) from None
        return node.value

    def boolean(self, node: Node, path: str) -> bool:
        # Only true/false: YAML 1.1 also reads yes/no/on/off as booleans,
        # which surprises people; a quoted "true" is a string, not a boolean.
        if (isinstance(node, ScalarNode) and node.tag == _TAG + "bool"
                and node.value.lower() in ("true", "false")):
            return node.value.lower() == "true"
        shown = f" {node.value!r}" if isinstance(node, ScalarNode) else ""
        raise self.fail(path, f"must be true or false, got {_kind(node)}{shown}", node)

    def strings(self, node: Node, path: str) -> list[tuple[str, Node, str]]:
        items = self.sequence(node, path) or []
        return [(self.string(item, f"{path}[{i}]", optional=False), item, f"{path}[{i}]")
                for i, item in enumerate(items)]

    def host(self, node: Node, path: str) -> str:
        """A declared host (``egress.routes[].host``, ``allow``,
        ``tls_passthrough``) in canonical form (issue 15): lower-cased, one
        trailing dot dropped, IDNA-encoded, through `bottle_api.hostnames`,
        the normaliser egress and the pipelock stand-in match with; so every
        list the renderer writes already names hosts as they match."""
        from . import hostnames

        raw = value = self.string(node, path, optional=False)
        try:
            value = hostnames.pattern(value)
        except hostnames.HostError:
            pass  # refused below, with the loader's own message
        if not _plausible_host(value):
            raise self.fail(path, f"{_one_line(raw)[:80]!r} is not a hostname "
                                  "(a bare name like api.example.com or *.example.com; "
                                  "no scheme, port or path)", node)
        if value.startswith("*.") and "." not in value[2:]:
            # pipelock's allowlist matches *.x.com against x.com and every
            # subdomain: *.com would admit a whole top-level domain
            raise self.fail(path, f"{_one_line(value)[:80]!r} is a wildcard over a whole "
                                  "top-level domain; name a domain (*.example.com)", node)
        return value

    def directory(self, node: Node, path: str, what: str) -> Path:
        """An existing, readable directory; every way a path can be bad
        (unknown ``~user``, NUL, too long, symlink loop, unreadable) is a
        SpecError naming file:line and key, never an OSError."""
        value = self.string(node, path, optional=False)
        try:
            return _existing_dir(self.base_dir, value)
        except _PathProblem as exc:
            raise self.fail(path, f"{what} {exc}", node) from None

    # -- the schema ----------------------------------------------------------
    def read(self, root: Node) -> BottleSpec:
        # Each _top_<key> handler returns the BottleSpec fields it fills
        # (git and egress are nested in YAML but flat in BottleSpec).
        fields: dict = {}
        seen = set()
        for key, _, value in self.mapping(root, "", TOP_KEYS):
            seen.add(key)
            fields.update(getattr(self, f"_top_{key}")(value, key))
        if "name" not in seen:
            raise self.fail("name", "required key is missing", root)
        if fields.get("agent") == "codex":
            for skill, item, here in self.skill_nodes:
                problem = codex_skill_problem(skill)
                if problem:
                    raise self.fail(here, f"agent codex cannot load skill '{skill.name}': "
                                          f"{problem}", item)
        fields = {k: v for k, v in fields.items() if v is not None}
        return BottleSpec(**fields, source=self.source, lines=self.lines)

    def _top_name(self, node, path):
        value = self.string(node, path, optional=False)
        if not NAME_RE.fullmatch(value):
            raise self.fail(path, f"{_one_line(value)[:60]!r} is not a valid bottle name "
                                  "(lowercase letters, digits and '-', starting with a "
                                  "letter or digit, at most 40 characters)", node)
        if value.endswith("-") or "--" in value:
            # smolmachines names its machine bottle-<name>-<suffix>, and smolvm
            # refuses a trailing hyphen or two in a row (1.9.3 src/data/mod.rs
            # validate_vm_name); NAME_RE already excludes '.' and caps the length.
            raise self.fail(path, f"'{value}' is not a valid bottle name: it may not end with "
                                  "'-' or contain '--' (smolvm machine names may not, "
                                  "validate_vm_name)", node)
        if value in RESERVED_NAMES:
            raise self.fail(path, f"'{value}' is reserved (the CLI keeps its registry "
                                  "under that name); pick another name", node)
        return {"name": value}

    def _top_agent(self, node, path):
        value = self.string(node, path, optional=False)
        if value not in AGENTS:
            raise self.fail(path, f"unknown agent {_one_line(value)[:40]!r} "
                                  f"(expected one of: {', '.join(AGENTS)})", node)
        return {"agent": value}

    def _top_image(self, node, path):
        return {"image": self.string(node, path)}

    def _top_prompt(self, node, path):
        return {"prompt": self.string(node, path, nonempty=False)}

    def _top_skills(self, node, path):
        skills: list[Path] = []
        seen: dict[str, str] = {}
        for _, item, here in self.strings(node, path):
            resolved = self.directory(item, here, "skill directory")
            if resolved.name in ("", ".", ".."):
                # '/' would copy the host's whole filesystem into the skills dir.
                raise self.fail(here, "a skill directory needs a name of its own "
                                      f"(got {str(resolved)!r})", item)
            if resolved.name in seen:
                raise self.fail(here, f"two skills are named '{resolved.name}' "
                                      f"(also {seen[resolved.name]}); the guest keeps "
                                      "skills by directory name", item)
            seen[resolved.name] = here
            skills.append(resolved)
            self.skill_nodes.append((resolved, item, here))
        return {"skills": tuple(skills)}

    def _top_cwd(self, node, path):
        if self.is_null(node):
            return {}
        return {"cwd": self.directory(node, path, "cwd")}

    def _top_git_user(self, node, path):
        if self.is_null(node):
            return {}
        values = {key: self.string(value, _join(path, key))
                  for key, _, value in self.mapping(node, path, GIT_USER_KEYS)}
        return {"git_user": GitUser(**values)}

    def _top_git(self, node, path):
        if self.is_null(node):
            return {}
        return {"upstreams": self._upstreams(value, _join(path, key))
                for key, _, value in self.mapping(node, path, GIT_KEYS)}

    def _upstreams(self, node, path) -> tuple[Upstream, ...]:
        out: list[Upstream] = []
        names: dict[str, str] = {}
        for i, item in enumerate(self.sequence(node, path) or []):
            here = f"{path}[{i}]"
            values = {key: (value, _join(here, key))
                      for key, _, value in self.mapping(item, here, UPSTREAM_KEYS)}
            for required in ("name", "url"):
                if required not in values:
                    raise self.fail(_join(here, required), "required key is missing", item)
            name_node, name_path = values["name"]
            name = self.string(name_node, name_path, optional=False)
            if not UPSTREAM_NAME_RE.fullmatch(name) or name in (".", ".."):
                raise self.fail(name_path, f"{_one_line(name)[:60]!r} is not a valid upstream "
                                           "name (letters, digits, '.', '_' and '-')", name_node)
            if name in names:
                raise self.fail(name_path, f"upstream name '{name}' is already used by "
                                           f"{names[name]}", name_node)
            names[name] = here
            url = self.string(*values["url"], optional=False)
            identity = self.string(*values["identity"]) if "identity" in values else None
            out.append(Upstream(name=name, url=url, identity=identity))
        return tuple(out)

    def _top_egress(self, node, path):
        if self.is_null(node):
            return {}
        fields = {}
        for key, _, value in self.mapping(node, path, EGRESS_KEYS):
            here = _join(path, key)
            if key == "routes":
                fields["routes"] = self._routes(value, here)
            else:  # allow, tls_passthrough: host lists
                fields[key] = tuple(self.host(item, p) for _, item, p in self.strings(value, here))
        return fields

    def _routes(self, node, path) -> tuple[Route, ...]:
        out: list[Route] = []
        hosts: dict[str, str] = {}
        for i, item in enumerate(self.sequence(node, path) or []):
            here = f"{path}[{i}]"
            values = {key: (value, _join(here, key))
                      for key, _, value in self.mapping(item, here, ROUTE_KEYS)}
            for required in ("host", "token_env"):
                if required not in values:
                    raise self.fail(_join(here, required), "required key is missing", item)
            host = self.host(*values["host"])
            if host.lower() in hosts:
                raise self.fail(values["host"][1], f"host '{host}' already has a route "
                                                   f"({hosts[host.lower()]})", values["host"][0])
            hosts[host.lower()] = here
            env_node, env_path = values["token_env"]
            token_env = self.string(env_node, env_path, optional=False)
            if not ENV_NAME_RE.fullmatch(token_env):
                # Never echo the value: a pasted token is the likely mistake.
                raise self.fail(env_path, "must be the NAME of a host environment variable "
                                          "holding the token (letters, digits, '_'), "
                                          "not the token itself", env_node)
            route = {"host": host, "token_env": token_env}
            if "header" in values:
                header = self.string(*values["header"], optional=False)
                if not _HTTP_TOKEN_RE.fullmatch(header):
                    raise self.fail(values["header"][1], f"{_one_line(header)[:60]!r} is not a "
                                                         "valid HTTP header name",
                                    values["header"][0])
                route["header"] = header
            if "scheme" in values:
                scheme = self.string(*values["scheme"], optional=False, nonempty=False)
                if scheme and not _HTTP_TOKEN_RE.fullmatch(scheme):
                    raise self.fail(values["scheme"][1], f"{_one_line(scheme)[:60]!r} is not a "
                                                         "valid auth scheme (one word, e.g. "
                                                         "Bearer, or empty)",
                                    values["scheme"][0])
                route["scheme"] = scheme
            out.append(Route(**route))
        return tuple(out)

    def _top_forward_host_credentials(self, node, path):
        return {"forward_host_credentials": self.boolean(node, path)}

    def _top_supervise(self, node, path):
        return {"supervise": self.boolean(node, path)}

    def _top_limits(self, node, path):
        if self.is_null(node):
            return {}
        values = {}
        for key, _, value in self.mapping(node, path, LIMIT_KEYS):
            here = _join(path, key)
            lo, hi = LIMIT_BOUNDS[key]
            tags = (_TAG + "int", _TAG + "float") if key == "cpus" else (_TAG + "int",)
            if not isinstance(value, ScalarNode) or value.tag not in tags:
                want = "a number" if key == "cpus" else "an integer"
                shown = f" {value.value!r}" if isinstance(value, ScalarNode) else ""
                raise self.fail(here, f"must be {want}, got {_kind(value)}{shown}", value)
            try:
                number = float(value.value) if key == "cpus" else int(value.value, 0)
            except ValueError:
                raise self.fail(here, f"{_one_line(value.value)[:40]!r} is not a number",
                                value) from None
            if not lo <= number <= hi:
                raise self.fail(here, f"{value.value} is out of range ({lo} to {hi})", value)
            values[key] = number
        return {"limits": Limits(**values)}


# Linux limits: one path component (NAME_MAX) and a whole path (PATH_MAX - 1).
NAME_MAX = 255
PATH_MAX = 4095


class _PathProblem(Exception):
    """Why a path in the spec is unusable; the text follows "<what> "."""


def _existing_dir(base: Path, value: str) -> Path:
    """``value`` (``~`` expanded, relative to ``base``) resolved to an
    existing, readable directory, or `_PathProblem` saying why not."""
    shown = _one_line(repr(value))[:80]
    if "\0" in value:
        raise _PathProblem(f"{shown} contains a NUL byte")
    if value.startswith("~"):
        user = value[1:].split("/", 1)[0]
        if user:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise _PathProblem(f"{shown}: no such user {user!r} for '~{user}'") from None
        expanded = os.path.expanduser(value)
        if expanded.startswith("~"):
            raise _PathProblem(f"{shown}: cannot determine the home directory for '~'")
        value = expanded
    joined = base / value
    if any(len(part.encode()) > NAME_MAX for part in joined.parts):
        raise _PathProblem(f"{shown}: a path component is longer than {NAME_MAX} bytes")
    if len(str(joined).encode()) > PATH_MAX:
        raise _PathProblem(f"{shown}: path longer than {PATH_MAX} bytes")
    try:
        resolved = joined.resolve()
        st = resolved.stat()
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise _PathProblem(f"{shown}: symlink loop") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _PathProblem(f"{shown}: symlink loop") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise _PathProblem(f"not found: {_one_line(str(joined))[:200]}") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise _PathProblem(f"{shown}: path too long") from None
        if exc.errno == errno.EACCES:
            raise _PathProblem(f"cannot be read (permission denied): "
                               f"{_one_line(str(joined))[:200]}") from None
        raise _PathProblem(f"cannot be used: {exc.strerror or exc}: "
                           f"{_one_line(str(joined))[:200]}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _PathProblem(f"is not a directory: {resolved}")
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise _PathProblem(f"cannot be read (permission denied): {resolved}")
    return resolved


def _plausible_host(value: str) -> bool:
    """A bare DNS name (optionally ``*.``-prefixed): no scheme, port, path or space."""
    name = value[2:] if value.startswith("*.") else value
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL_RE.fullmatch(label) for label in name.split("."))
