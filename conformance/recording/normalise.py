"""Normalising recorded text: secrets and volatile paths become placeholders."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bottle_ref
from bottle_api.backend import Backend

from .tracing import BACKEND_PKG, HOME, PKG, PYTHON, SECRET, STATE, TMP

# -- normalisation ---------------------------------------------------------------


def _path_variants(path: str | os.PathLike | None) -> list[str]:
    if not path:
        return []
    text = str(path)
    out = [text, os.path.realpath(text)]
    return [p for p in dict.fromkeys(out) if p and p != "/"]


@dataclass(frozen=True)
class Normaliser:
    """Literal replacements applied in order: secrets first, then paths,
    longest first (so ``<STATE>`` wins over the ``<TMP>`` it lives in)."""

    replacements: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(cls, *, secrets: Iterable[str] = (), state_root=None, home=None, root=None,
              backend: Backend | None = None) -> "Normaliser":
        secret_pairs = [(s, SECRET) for s in sorted({s for s in secrets if s}, key=len,
                                                     reverse=True)]
        paths: list[tuple[str, str]] = []
        for value, label in ((state_root, STATE), (home, HOME), (root, TMP),
                             (Path(bottle_ref.__file__).parent, PKG)):
            paths += [(p, label) for p in _path_variants(value)]
        if backend is not None:
            top = sys.modules.get(type(backend).__module__.split(".")[0])
            top_file = getattr(top, "__file__", None)
            if top_file and top is not bottle_ref:
                paths += [(p, BACKEND_PKG) for p in _path_variants(Path(top_file).parent)]
        paths += [(p, PYTHON) for p in _path_variants(sys.executable)]
        seen: dict[str, str] = {}
        for literal, label in paths:
            seen.setdefault(literal, label)
        ordered = sorted(seen.items(), key=lambda kv: len(kv[0]), reverse=True)
        return cls(tuple(secret_pairs) + tuple(ordered))

    def __call__(self, text: str) -> str:
        for literal, label in self.replacements:
            if literal in text:
                text = text.replace(literal, label)
        return text

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(lit for lit, label in self.replacements if label == SECRET)
