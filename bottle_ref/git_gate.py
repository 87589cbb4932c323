"""git-gate: the guest reaches declared upstreams only through the gate.

The guest's ``~/.gitconfig`` rewrites each upstream URL to the gate with
``insteadOf``; the gate address differs per backend (``git://git-gate:9418``
on docker, ``git://127.0.0.1:9418``, a guest relay, on smolmachines), so it is a
parameter here (seed chunk 4d: one neutral renderer, two addresses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bottle_api import conventions

GATE_ROOT = conventions.GIT_GATE_ROOT
PORT = conventions.PORTS[conventions.GIT_GATE]


class UpstreamLike(Protocol):
    name: str
    url: str


def repo_path(name: str) -> str:
    """Where git-gate serves upstream ``name`` inside the bundle."""
    return f"{GATE_ROOT}/{name}.git"


def gate_repo_url(gate_url: str, name: str) -> str:
    return f"{gate_url.rstrip('/')}/{name}.git"


def insteadof_pairs(upstreams: Sequence[UpstreamLike], gate_url: str) -> list[tuple[str, str]]:
    """``(gate repo URL, upstream URL)`` per upstream, in declared order:
    provisioning runs ``git config --global url.<A>.insteadOf <B>``."""
    return [(gate_repo_url(gate_url, u.name), u.url) for u in upstreams]


def _quote_subsection(text: str) -> str:
    # git-config(1): in a subsection name, only " and \ need escaping.
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote_value(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    needs_quotes = (
        escaped != text or text != text.strip() or any(c in text for c in "#;")
    )
    return f'"{escaped}"' if needs_quotes else text


def render_gitconfig(upstreams: Sequence[UpstreamLike], gate_url: str) -> str:
    """``~/.gitconfig`` text with one ``[url "<gate>/<name>.git"]
    insteadOf = <upstream url>`` section per upstream ("" when none)."""
    blocks = []
    for gate, upstream in insteadof_pairs(upstreams, gate_url):
        blocks.append(f'[url "{_quote_subsection(gate)}"]\n\tinsteadOf = {_quote_value(upstream)}\n')
    return "".join(blocks)
