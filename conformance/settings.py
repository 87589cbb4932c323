"""How a run of the suite is configured: one documented, frozen struct.

Like csi-test's sanity ``TestConfig``: every knob lives here with its
default, and there is exactly one place that decides the value. Precedence,
first wins: command-line flag, environment variable, then the
``[tool.bottle-conformance]`` table of ``pyproject.toml`` at pytest's rootdir.

    flag                          env                          pyproject key
    --bottle-backend NAME         BOTTLE_BACKEND               backend
    --bottle-require CAP,...      BOTTLE_REQUIRE               require (list)
    --bottle-certify              BOTTLE_CERTIFY (1/0)         certify
    --bottle-report PATH          BOTTLE_REPORT                report
    --bottle-snapshot-dir DIR     BOTTLE_SNAPSHOT_DIR          snapshot_dir
    --bottle-hypothesis-profile P BOTTLE_HYPOTHESIS_PROFILE    hypothesis_profile
    --bottle-live-timeout SECS    BOTTLE_LIVE_TIMEOUT          live_timeout
    --bottle-fixture-engine CLI   BOTTLE_FIXTURE_ENGINE        fixture_engine
    --bottle-call-timeout SECS    BOTTLE_CALL_TIMEOUT          call_timeout
"""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capabilities import Capability, UnknownCapabilityError, parse_capabilities

PYPROJECT_TABLE = "bottle-conformance"
PROFILES = ("dev", "ci", "certify")
DEFAULT_LIVE_TIMEOUT = 120.0

# Hypothesis profile names are namespaced so we never clobber a project's own
# "ci"/"dev" profiles; `Settings.hypothesis_profile` uses the short names.
_PROFILE_PREFIX = "bottle-conformance-"


class SettingsError(ValueError):
    """A bad configuration value; the message names where it came from."""


@dataclass(frozen=True)
class Settings:
    """Configuration of one conformance run.

    backend
        Backend to test when none is supplied by a test class: an entry-point
        name from the ``bottle.backends`` group (``docker``) or
        ``package.module:factory``. None: the plugin stays inert unless a
        collected test carries a ``clause`` marker.
    require
        Capabilities that must be declared: a clause that would report
        NOT_SUPPORTED for one of these fails instead.
    certify
        Certification run: the session fails unless every MUST clause PASSED
        (NOT_SUPPORTED, ERROR, XFAIL and clauses not run all fail it).
    report
        Where to write the JSON report (None: no report).
    snapshot_dir
        Where argv snapshots live. None: ``<rootdir>/snapshots/<backend name>``
        (see `snapshot_path`), i.e. in the backend author's own repository.
    hypothesis_profile
        ``dev`` (hypothesis defaults), ``ci`` (derandomized, no deadline, fewer
        examples, prints reproduction blobs) or ``certify`` (many examples).
        None: ``certify`` when certifying, else ``dev``. The plugin loads the
        profile only when a backend is selected or a profile is set, so an
        unrelated test run keeps its own hypothesis settings.
    live_timeout
        Seconds the live tier waits for a bottle to come up or answer.
    fixture_engine
        The docker-compatible CLI the live harness runs its own fixtures
        with (test upstream, sentinels): ``docker`` (default), ``podman``,
        ``nerdctl``, a path, or a command with arguments. Its engine address
        comes from the environment (``DOCKER_HOST``, ``CONTAINER_HOST``).
    call_timeout
        Seconds any one backend or bottle call (each seam method, any
        thread) may take before its tests end as ERROR. None:
        `conformance.watchdog.DEFAULT_STATIC` in the static tiers,
        `DEFAULT_LIVE` in the live tier.
    rootdir
        pytest's rootdir; relative ``snapshot_dir`` defaults resolve against it.
    """

    backend: str | None = None
    require: frozenset[Capability] = frozenset()
    certify: bool = False
    report: Path | None = None
    snapshot_dir: Path | None = None
    hypothesis_profile: str | None = None
    live_timeout: float = DEFAULT_LIVE_TIMEOUT
    fixture_engine: str = "docker"
    call_timeout: float | None = None
    rootdir: Path = field(default_factory=Path.cwd)

    @property
    def effective_profile(self) -> str:
        """The profile short name this run uses."""
        if self.hypothesis_profile:
            return self.hypothesis_profile
        return "certify" if self.certify else "dev"

    @property
    def loads_profile(self) -> bool:
        """Whether the plugin should make `effective_profile` the default."""
        return self.backend is not None or self.hypothesis_profile is not None

    def snapshot_path(self, backend_name: str) -> Path:
        """The snapshot directory for ``backend_name`` (its `Backend.name`)."""
        if self.snapshot_dir is not None:
            return self.snapshot_dir
        return self.rootdir / "snapshots" / backend_name

    # -- resolution --------------------------------------------------------

    @classmethod
    def resolve(cls, config: Any) -> "Settings":
        """Settings for a pytest ``config``: flags, then env, then pyproject."""
        opt = config.option
        flags = {
            "backend": opt.bottle_backend,
            "require": ",".join(opt.bottle_require) if opt.bottle_require else None,
            "certify": opt.bottle_certify,
            "report": opt.bottle_report,
            "snapshot_dir": opt.bottle_snapshot_dir,
            "hypothesis_profile": opt.bottle_hypothesis_profile,
            "live_timeout": opt.bottle_live_timeout,
            "fixture_engine": getattr(opt, "bottle_fixture_engine", None),
            "call_timeout": getattr(opt, "bottle_call_timeout", None),
        }
        rootdir = Path(config.rootpath)
        settings = cls.from_sources(
            flags,
            os.environ,
            read_pyproject(rootdir / "pyproject.toml"),
            cwd=Path(config.invocation_params.dir),
            rootdir=rootdir,
        )
        if settings.report is not None:
            where = ("--bottle-report" if flags["report"] is not None else
                     "BOTTLE_REPORT" if os.environ.get("BOTTLE_REPORT") else
                     f"pyproject.toml [tool.{PYPROJECT_TABLE}] report")
            check_report_path(settings.report, where)
        return settings

    @classmethod
    def from_sources(
        cls,
        flags: Mapping[str, Any],
        env: Mapping[str, str],
        pyproject: Mapping[str, Any],
        *,
        cwd: Path,
        rootdir: Path,
    ) -> "Settings":
        """Merge the three sources (first non-None wins) and validate."""
        unknown = sorted(set(pyproject) - set(_ENV))
        if unknown:
            raise SettingsError(
                f"pyproject.toml [tool.{PYPROJECT_TABLE}]: unknown key(s) "
                f"{', '.join(unknown)} (known: {', '.join(_ENV)})"
            )
        values: dict[str, Any] = {}
        for key, env_name in _ENV.items():
            if flags.get(key) is not None:
                values[key] = _convert(key, flags[key], f"--bottle-{key.replace('_', '-')}", cwd)
            elif env.get(env_name, "") != "":
                values[key] = _convert(key, env[env_name], env_name, cwd)
            elif pyproject.get(key) is not None:
                where = f"pyproject.toml [tool.{PYPROJECT_TABLE}] {key}"
                values[key] = _convert(key, pyproject[key], where, rootdir)
        return cls(rootdir=rootdir, **values)


_ENV = {
    "backend": "BOTTLE_BACKEND",
    "require": "BOTTLE_REQUIRE",
    "certify": "BOTTLE_CERTIFY",
    "report": "BOTTLE_REPORT",
    "snapshot_dir": "BOTTLE_SNAPSHOT_DIR",
    "hypothesis_profile": "BOTTLE_HYPOTHESIS_PROFILE",
    "live_timeout": "BOTTLE_LIVE_TIMEOUT",
    "fixture_engine": "BOTTLE_FIXTURE_ENGINE",
    "call_timeout": "BOTTLE_CALL_TIMEOUT",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(key: str, raw: Any, where: str, base: Path) -> Any:
    """One raw value to its typed form; `SettingsError` names ``where``."""
    if key == "backend":
        if not isinstance(raw, str) or not raw.strip():
            raise SettingsError(f"{where}: expected a backend name, got {raw!r}")
        return raw.strip()
    if key == "require":
        names = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        try:
            return parse_capabilities(str(n) for n in names)
        except UnknownCapabilityError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    if key == "certify":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SettingsError(f"{where}: expected a boolean (1/0, true/false), got {raw!r}")
    if key in ("report", "snapshot_dir"):
        if not isinstance(raw, (str, os.PathLike)) or not str(raw):
            raise SettingsError(f"{where}: expected a path, got {raw!r}")
        path = Path(raw).expanduser()
        return path if path.is_absolute() else base / path
    if key == "hypothesis_profile":
        if raw not in PROFILES:
            raise SettingsError(f"{where}: expected one of {', '.join(PROFILES)}, got {raw!r}")
        return raw
    if key in ("live_timeout", "call_timeout"):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if not value > 0:
            raise SettingsError(f"{where}: expected a positive number of seconds, got {raw!r}")
        return value
    if key == "fixture_engine":
        text = raw.strip() if isinstance(raw, str) else ""
        try:
            ok = bool(text) and bool(shlex.split(text))
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(f"{where}: expected a container CLI such as docker or podman, "
                                f"got {raw!r}")
        return text
    raise AssertionError(key)  # pragma: no cover - _ENV and _convert agree


def check_report_path(path: Path, where: str) -> None:
    """Refuse, before any test runs, a report path that cannot be written:
    a directory, a special file, or a file in a directory that does not
    exist (never created silently: a typo would hide the report)."""
    if path.is_dir():
        raise SettingsError(f"{where}: {path} is a directory; give a file path "
                            f"(e.g. {path / 'report.json'})")
    if path.exists() and not path.is_file():
        raise SettingsError(f"{where}: {path} exists and is not a regular file")
    if not path.parent.is_dir():
        raise SettingsError(f"{where}: directory {path.parent} does not exist (it is not "
                            "created for you)")


def read_pyproject(path: Path) -> Mapping[str, Any]:
    """The ``[tool.bottle-conformance]`` table of ``path`` ({} if absent)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    table = data.get("tool", {}).get(PYPROJECT_TABLE, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.{PYPROJECT_TABLE}] must be a table")
    return table


# -- hypothesis profiles -----------------------------------------------------


def hypothesis_profile_name(short: str) -> str:
    """The registered hypothesis name of a profile short name."""
    return _PROFILE_PREFIX + short


def register_hypothesis_profiles() -> None:
    """Register dev, ci and certify (namespaced). Idempotent; loads nothing.

    Hypothesis is imported here, not at module level: merely importing it
    adds a header line to every pytest run, and the plugin must stay inert.
    """
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile(hypothesis_profile_name("dev"))
    hypothesis_settings.register_profile(
        hypothesis_profile_name("ci"),
        derandomize=True,
        deadline=None,
        max_examples=50,
        print_blob=True,
        database=None,
        # The explain phase spends ~30 s per failing property on a report
        # of which lines mattered; CI wants the failure, fast.
        phases=tuple(p for p in Phase if p is not Phase.explain),
        suppress_health_check=[HealthCheck.too_slow],
    )
    hypothesis_settings.register_profile(
        hypothesis_profile_name("certify"),
        deadline=None,
        max_examples=1000,
        print_blob=True,
        phases=tuple(Phase),
        suppress_health_check=[HealthCheck.too_slow],
    )
