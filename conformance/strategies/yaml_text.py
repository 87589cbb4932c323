"""Rendering a generated spec as the YAML a user would write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bottle_api.spec import BottleSpec

# -- YAML -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecYaml:
    """A spec as YAML text, and the 1-based line of every key path in it
    (``egress.routes[0].token_env``), as the loader records them."""

    text: str
    lines: Mapping[str, int]


def _q(value: str) -> str:
    """A YAML double-quoted scalar with everything outside printable ASCII
    escaped, so any string round-trips exactly."""
    out = ['"']
    for ch in value:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def as_loaded(spec: BottleSpec) -> BottleSpec:
    """``spec`` as the loader returns it from `spec_yaml`'s text: declared
    hosts (routes, allow, tls_passthrough) in canonical form (issue 15: the
    loader normalises through `bottle_api.hostnames`; a name that normaliser
    refuses, e.g. ``0.0``, is kept as written)."""
    import dataclasses

    from bottle_api import hostnames as names

    def canon(h: str) -> str:
        try:
            return names.pattern(h)
        except names.HostError:
            return h

    return dataclasses.replace(
        spec, routes=tuple(dataclasses.replace(r, host=canon(r.host)) for r in spec.routes),
        allow=tuple(canon(h) for h in spec.allow),
        tls_passthrough=tuple(canon(h) for h in spec.tls_passthrough))


def spec_yaml(spec: BottleSpec) -> SpecYaml:
    """Render ``spec`` as the YAML a user would write, with its line map.

    Written by hand, not with a YAML library, so the line numbers are an
    independent oracle for errors that must name a line."""
    lines: list[str] = []
    where: dict[str, int] = {}

    def put(text: str, key: str | None = None) -> None:
        lines.append(text)
        if key is not None:
            where[key] = len(lines)

    put(f"name: {_q(spec.name)}", "name")
    put(f"agent: {_q(spec.agent)}", "agent")
    if spec.image is not None:
        put(f"image: {_q(spec.image)}", "image")
    put(f"prompt: {_q(spec.prompt)}", "prompt")
    if spec.skills:
        put("skills:", "skills")
        for i, p in enumerate(spec.skills):
            put(f"  - {_q(str(p))}", f"skills[{i}]")
    if spec.cwd is not None:
        put(f"cwd: {_q(str(spec.cwd))}", "cwd")
    if not spec.git_user.is_empty():
        put("git_user:", "git_user")
        for k in ("name", "email"):
            v = getattr(spec.git_user, k)
            if v is not None:
                put(f"  {k}: {_q(v)}", f"git_user.{k}")
    if spec.upstreams:
        put("git:", "git")
        put("  upstreams:", "git.upstreams")
        for i, u in enumerate(spec.upstreams):
            base = f"git.upstreams[{i}]"
            put(f"    - name: {_q(u.name)}", base)
            where[f"{base}.name"] = len(lines)
            put(f"      url: {_q(u.url)}", f"{base}.url")
            if u.identity is not None:
                put(f"      identity: {_q(u.identity)}", f"{base}.identity")
    if spec.routes or spec.allow or spec.tls_passthrough:
        put("egress:", "egress")
        for key in ("routes", "allow", "tls_passthrough"):
            items = getattr(spec, key)
            if not items:
                continue
            put(f"  {key}:", f"egress.{key}")
            for i, item in enumerate(items):
                base = f"egress.{key}[{i}]"
                if key != "routes":
                    put(f"    - {_q(item)}", base)
                    continue
                put(f"    - host: {_q(item.host)}", base)
                where[f"{base}.host"] = len(lines)
                put(f"      token_env: {_q(item.token_env)}", f"{base}.token_env")
                put(f"      header: {_q(item.header)}", f"{base}.header")
                put(f"      scheme: {_q(item.scheme)}", f"{base}.scheme")
    put(f"forward_host_credentials: {'true' if spec.forward_host_credentials else 'false'}",
        "forward_host_credentials")
    put(f"supervise: {'true' if spec.supervise else 'false'}", "supervise")
    return SpecYaml("\n".join(lines) + "\n", where)
