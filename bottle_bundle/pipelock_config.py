"""pipelock.yaml as pipelock reads it: the schema and the validator.

The bundle's pipelock-compatible proxy loads its config through
`load_config`, which refuses what pipelock refuses (an unknown key anywhere
is fatal: pipelock decodes with known-fields strictness). The reference's
renderer (`bottle_ref.pipelock`) checks its output against the same code.
The conformance suite does NOT use this module: it has its own oracle.

Stdlib + PyYAML only (it runs inside the bundle image).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from bottle_api import conventions

MODES = ("strict", "balanced", "audit")
ACTIONS = ("warn", "block")
SEVERITIES = ("critical", "high", "medium", "low")

CONFIG_PATH = conventions.PIPELOCK_CONFIG_PATH
CA_CERT = conventions.PIPELOCK_CA_CERT
CA_KEY = conventions.PIPELOCK_CA_KEY
DEFAULT_LISTEN = "127.0.0.1:8888"
VERSION = 1

# The nested description of every key pipelock accepts (the subset of its
# config this project uses; anything else is rejected). Leaves:
#   int / str / bool   a scalar of that type (bool is not an int here)
#   tuple of str       an enum: a str that is one of these
#   [schema]           a list whose items match schema
#   {key: schema}      a mapping with (optional) keys from this set only
PIPELOCK_SCHEMA: Mapping[str, Any] = {
    "version": int,
    "mode": MODES,
    "api_allowlist": [str],
    "fetch_proxy": {
        "listen": str,
        "monitoring": {"max_requests_per_minute": int},
    },
    "forward_proxy": {"enabled": bool},
    "dlp": {
        "patterns": [{"name": str, "regex": str, "severity": SEVERITIES}],
    },
    "request_body_scanning": {"enabled": bool, "action": ACTIONS, "scan_headers": bool},
    "tls_interception": {
        "enabled": bool,
        "ca_cert": str,
        "ca_key": str,
        "passthrough_domains": [str],
    },
}

class PipelockConfigError(ValueError):
    """A pipelock config pipelock would refuse. ``key`` is the first
    offending key path; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[str], key: str = ""):
        self.problems = list(problems)
        self.key = key
        super().__init__("pipelock config: " + "; ".join(self.problems))


# -- validation ---------------------------------------------------------------

def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", str: "str", float: "float", list: "list",
            dict: "mapping"}.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: Any, schema: Any, path: str, problems: list[str]) -> None:
    where = path or "<root>"
    if isinstance(schema, Mapping):
        if not isinstance(value, Mapping):
            problems.append(f"{where}: expected a mapping, got {_type_name(value)}")
            return
        for key, sub in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} is not a string")
            elif key not in schema:
                problems.append(f"{_join(path, key)}: unknown key")
            else:
                _check(sub, schema[key], _join(path, key), problems)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {_type_name(value)}")
            return
        for i, item in enumerate(value):
            _check(item, schema[0], f"{path}[{i}]", problems)
    elif isinstance(schema, tuple):
        if not isinstance(value, str) or value not in schema:
            problems.append(f"{where}: must be one of {', '.join(schema)}, got {value!r}")
    elif schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected int, got {_type_name(value)}")
    elif not isinstance(value, schema):
        problems.append(f"{where}: expected {schema.__name__}, got {_type_name(value)}")


def _get(data: Mapping, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def validate_config(data: Mapping) -> list[str]:
    """Every problem pipelock would refuse, each ``key.path: message``.

    Checks: unknown keys at any level, types, enums (mode, action, severity),
    ``forward_proxy.enabled`` true, DLP patterns named with a compiling regex,
    CA paths present when TLS interception is on, a non-negative rate limit.
    An empty list means the config is acceptable.
    """
    problems: list[str] = []
    _check(data, PIPELOCK_SCHEMA, "", problems)
    if not isinstance(data, Mapping):
        return problems

    if _get(data, "forward_proxy", "enabled") is not True:
        problems.append("forward_proxy.enabled: must be true (the bottle uses pipelock as a forward proxy)")

    rate = _get(data, "fetch_proxy", "monitoring", "max_requests_per_minute")
    if isinstance(rate, int) and not isinstance(rate, bool) and rate < 0:
        problems.append("fetch_proxy.monitoring.max_requests_per_minute: must be >= 0")

    patterns = _get(data, "dlp", "patterns")
    if isinstance(patterns, list):
        for i, pat in enumerate(patterns):
            if not isinstance(pat, Mapping):
                continue
            for key in ("name", "regex"):
                if key not in pat:
                    problems.append(f"dlp.patterns[{i}].{key}: required")
            regex = pat.get("regex")
            if isinstance(regex, str):
                try:
                    re.compile(regex)
                except re.error as exc:
                    problems.append(f"dlp.patterns[{i}].regex: does not compile: {exc}")

    tls = data.get("tls_interception")
    if isinstance(tls, Mapping) and tls.get("enabled") is True:
        for key in ("ca_cert", "ca_key"):
            if not tls.get(key):
                problems.append(f"tls_interception.{key}: required when tls_interception.enabled is true")
    return problems


def _key_of(problem: str) -> str:
    return problem.split(":", 1)[0]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config(text: str) -> dict:
    """Parse and validate pipelock.yaml text. Raises `PipelockConfigError`
    (a ValueError) naming the offending key path."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PipelockConfigError([f"<root>: {problem}{where}"], "<root>") from None
    if data is None:
        data = {}
    problems = validate_config(data)
    if problems:
        raise PipelockConfigError(problems, _key_of(problems[0]))
    return data
