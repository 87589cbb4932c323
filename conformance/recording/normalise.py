"""Normalising recorded text: secrets and volatile paths become placeholders."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bottle_api.backend import Backend

from .packages import backend_packages, package_dir
from .tracing import BACKEND_PKG, HOME, PYTHON, SECRET, STATE, TMP


def package_placeholder(top: str) -> str:
    """``<PKG:name>``: the install path of a package the backend uses."""
    return f"<PKG:{top}>"

# -- normalisation ---------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _fixed_variants(path: str) -> tuple[str, ...]:
    """`_path_variants` of a path that stays put for the process (the
    interpreter, an imported package's directory): resolved once, not on
    every recorded launch."""
    return tuple(_path_variants(path))


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
        for value, label in ((state_root, STATE), (home, HOME), (root, TMP)):
            paths += [(p, label) for p in _path_variants(value)]
        if backend is not None:
            # The backend's own package is <BACKEND_PKG>; a package it uses
            # (another project's helpers) is <PKG:name>. None by name.
            own, *used = backend_packages(backend)
            for top, label in ((own, BACKEND_PKG), *((u, package_placeholder(u)) for u in used)):
                where = package_dir(top)
                if where is not None:
                    paths += [(p, label) for p in _fixed_variants(str(Path(where)))]
        paths += [(p, PYTHON) for p in _fixed_variants(sys.executable)]
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
