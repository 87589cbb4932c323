"""Rendering a recording as snapshot text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Protocol

from bottle_api.runner import Call

from .tracing import DIRECT_SLEEP, PHASES


class Renderable(Protocol):
    """What `render` reads of a recording (`recorder.Recording` is one); a
    protocol, so this module does not import the recorder that calls it."""

    backend_name: str
    scenario: str | None
    spans: Mapping[str, tuple[int, int]]
    agent_args: tuple[str, ...]
    agent_argvs: Mapping[bool, tuple[str, ...]]
    error: BaseException | None
    error_phase: str | None

    def phase_calls(self, phase: str) -> tuple[Call, ...]: ...

# -- rendering -------------------------------------------------------------------

_PLAIN = re.compile(r"[^\x00-\x1f\x7f\"]+")


def _token(token: str) -> str:
    """A token as one line: raw when unambiguous, else a JSON string."""
    if token and token == token.strip() and _PLAIN.fullmatch(token):
        return token
    return json.dumps(token, ensure_ascii=False)


def _render_call(call: Call) -> list[str]:
    if call.kind == "sleep":
        return [f"sleep {call.seconds:g}"]
    if call.kind == DIRECT_SLEEP:
        return [f"{DIRECT_SLEEP} {call.seconds:g}  # fixed sleep outside the runner"]
    lines = ["run" if call.returncode == 0 else f"run (exit {call.returncode})"]
    lines += [f"  {_token(t)}" for t in call.argv]
    lines += [f"env: {n}" for n in call.env_names]
    if call.purpose is not None:
        lines.append(f"purpose: {call.purpose}")
    if call.timeout is not None:
        lines.append(f"timeout: {call.timeout:g}")
    if call.input is not None:
        lines.append("input:")
        lines += [f"  | {ln}" for ln in call.input.splitlines()]
    return lines


def render(rec: Renderable) -> str:
    """Un-normalised text of ``rec`` (`Recording.text` normalises it)."""
    out = [
        "# bottle-conformance argv recording",
        f"# backend: {rec.backend_name}",
        f"# scenario: {rec.scenario or '-'}",
        f"# agent args: {' '.join(rec.agent_args)}",
    ]
    for phase in PHASES:
        if phase not in rec.spans:
            continue
        if phase == "agent_argv":
            for tty in (False, True):
                if tty in rec.agent_argvs:
                    out += ["", f"== agent_argv tty={tty} ==", "", "argv"]
                    out += [f"  {_token(t)}" for t in rec.agent_argvs[tty]]
        else:
            out += ["", f"== {phase} =="]
        for call in rec.phase_calls(phase):
            out += [""] + _render_call(call)
    if rec.error is not None:
        first = (str(rec.error).strip().splitlines() or [""])[0]
        out += ["", f"== error in {rec.error_phase} ==", "",
                f"{type(rec.error).__name__}: {first}"]
    return "\n".join(out) + "\n"
