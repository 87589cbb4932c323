"""The syrupy extension that stores argv recordings as reviewable text.

One file per scenario, ``<snapshot dir>/<scenario>.txt``, where the
snapshot dir is ``Settings.snapshot_path(backend.name)`` (default
``<rootdir>/snapshots/<backend>``, or ``--bottle-snapshot-dir``): the
snapshots live in the backend author's repository, next to their code, and
are reviewed like code. The text is `conformance.recording.Recording.text`:
one event per block, one argv token per line, volatile values replaced.

Syrupy names snapshot files after the test; here the file is named after
the scenario, and one directory is shared by every test class that tests
the backend. So this extension:

- is made per directory (`extension_for`), since syrupy instantiates an
  extension with no arguments;
- files each snapshot as ``<scenario>.txt`` (the ``name=`` of the assertion);
- never discovers or deletes files in the directory: it is the author's,
  and syrupy's unused-snapshot cleanup matches files to tests by name,
  which does not hold here. A snapshot of a scenario the suite no longer
  has is left alone (delete it by hand).

Works with syrupy 4.6 and later (tested on 7): it overrides only the
documented extension hooks and the ``WriteMode.TEXT`` switch syrupy's own
docs use for text single-file snapshots.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from syrupy.data import SnapshotCollections

from . import redaction
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

FILE_EXTENSION = "txt"


class SecretInSnapshot(AssertionError):
    """A snapshot would hold a secret value; it is refused (SECRET-ARGV)."""

UPDATE_FLAG = "--snapshot-update"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def safe_name(scenario: str) -> str:
    """``scenario`` as a file stem; anything but letters, digits, '.', '_'
    and '-' is refused rather than silently rewritten."""
    if not _SAFE_NAME.fullmatch(scenario):
        raise ValueError(f"scenario name {scenario!r} cannot name a snapshot file")
    return scenario


class ArgvSnapshotExtension(SingleFileSnapshotExtension):
    """Text snapshots of recordings in `snapshot_dir` (set by `extension_for`)."""

    file_extension = FILE_EXTENSION
    _write_mode = WriteMode.TEXT
    snapshot_dir: ClassVar[str] = ""

    def serialize(self, data: Any, **kwargs: Any) -> str:
        """A `Recording` (its normalised ``text()``) or the text itself."""
        text = data.text() if hasattr(data, "text") and callable(data.text) else data
        if not isinstance(text, str):
            raise TypeError(f"argv snapshots hold text or a Recording, not {type(data).__name__}")
        leaks = redaction.find_current(text)
        if leaks:
            # Raised before syrupy compares or queues a write: nothing holding
            # a secret is ever written, and no diff of it is ever shown.
            raise SecretInSnapshot(redaction.refusal("this argv snapshot", leaks))
        return text

    @classmethod
    def _dir(cls) -> str:
        if not cls.snapshot_dir:
            raise RuntimeError("use conformance.snapshot_ext.extension_for(directory)")
        return cls.snapshot_dir

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return cls._dir()

    @classmethod
    def discovery_dirname(cls, *, test_location: Any) -> str:
        return cls._dir()

    @classmethod
    def get_file_basename(cls, *, test_location: Any, index: Any) -> str:
        if not isinstance(index, str) or not index:
            raise ValueError("argv snapshots are named: assert ... == snapshot(name=<scenario>)")
        return safe_name(index)

    @classmethod
    def matches_test_location(cls, **kwargs: Any) -> bool:
        # Files are named after scenarios, not tests; every file here is ours.
        return True

    def discover_snapshots(self, **kwargs: Any) -> SnapshotCollections:
        # Nothing discovered, nothing ever reported unused or deleted.
        return SnapshotCollections()

    def delete_snapshots(self, **kwargs: Any) -> None:
        return None


@lru_cache(maxsize=None)
def _extension_for(directory: str) -> type[ArgvSnapshotExtension]:
    return type("ArgvSnapshotExtension", (ArgvSnapshotExtension,), {
        "snapshot_dir": directory,
        "__doc__": f"Argv snapshots in {directory}.",
    })


def extension_for(directory: str | Path) -> type[ArgvSnapshotExtension]:
    """The extension class storing snapshots in ``directory`` (one class per
    directory, reused, so syrupy batches and reports them together)."""
    return _extension_for(str(Path(directory).resolve()))


def snapshot_file(directory: str | Path, scenario: str) -> Path:
    """Where the snapshot of ``scenario`` lives in ``directory``."""
    return Path(directory) / f"{safe_name(scenario)}.{FILE_EXTENSION}"


def missing_snapshot_message(path: Path, backend: str, scenario: str) -> str:
    return (
        f"no argv snapshot for backend {backend!r}, scenario {scenario!r} at {path}. "
        f"Record it with `pytest {UPDATE_FLAG}` (keep --bottle-backend / your "
        "BackendConformance class as in this run), read it, and commit it with your "
        "backend: it documents every command your backend runs."
    )
