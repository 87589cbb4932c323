"""Named bottle scenarios every tier shares.

A `Scenario` is a frozen recipe: given a scratch directory it builds a
`BottleSpec` and a fake `HostContext` (nothing is read from the real host).
Names are stable, because snapshot files are named after them
(``snapshots/<backend>/<scenario>.txt``).

    from conformance.scenarios import SCENARIOS, scenario_params

    inputs = SCENARIOS["claude-routes"].build(tmp_path)
    plan = backend.prepare(inputs.spec, inputs.host)
    assert not any(s in tok for s in inputs.secrets for tok in argv)

    @pytest.mark.parametrize("scenario", scenario_params("PROV-GITUSER"))
    def test_x(self, backend, scenario): ...   # gated on scenario.needs

Every host built here holds fake credentials: one distinctive token per
route in ``env`` (``tok-<scenario>-<i>-SECRET-0123456789``) and fake Codex /
Claude sign-ins in ``home_files`` whose tokens contain ``SECRET`` too, so a
leak is easy to spot and `ScenarioInputs.secrets` lists every one of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pytest

from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.spec import BottleSpec, GitUser, Route, Upstream

from . import redaction
from .capabilities import Capability
from .markers import clause

# The fake host sign-ins' expiry. Fixed (never "now + x") so recordings are
# reproducible; far enough ahead that nothing treats it as expired.
CODEX_TOKEN_EXP = 1_900_000_000  # 2030-03-17, seconds since the epoch
CLAUDE_EXPIRES_AT_MS = CODEX_TOKEN_EXP * 1000

# Text of the prompt in scenarios that have one (it must travel as a file).
PROMPT_TEXT = "You are working in a bottle. Commit early and explain each change.\n"


def _b64url(obj: Mapping) -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def fake_jwt(claims: Mapping, *, signature: str) -> str:
    """A 3-part JWT (RS256 header, the given claims, ``signature`` as the
    third part). Not verifiable; shaped like what a real host holds."""
    return f"{_b64url({'alg': 'RS256', 'typ': 'JWT'})}.{_b64url(claims)}.{signature}"


def fake_codex_auth(tag: str, *, exp: int = CODEX_TOKEN_EXP) -> str:
    """A host ``~/.codex/auth.json`` (ChatGPT sign-in) whose access and id
    tokens are JWTs with ``exp``; every token holds ``SECRET`` and ``tag``."""
    auth = {"chatgpt_account_id": f"acct-{tag}", "chatgpt_plan_type": "plus"}
    access = fake_jwt({"exp": exp, "https://api.openai.com/auth": auth,
                       "scp": ["openid"]}, signature=f"SECRET-access-{tag}")
    id_token = fake_jwt({"exp": exp, "email": f"{tag}@example.com",
                         "https://api.openai.com/auth": auth},
                        signature=f"SECRET-id-{tag}")
    return json.dumps({
        "OPENAI_API_KEY": None,
        "tokens": {"id_token": id_token, "access_token": access,
                   "refresh_token": f"rt-SECRET-{tag}", "account_id": f"acct-{tag}"},
        "last_refresh": "2025-01-01T00:00:00Z",
    }, indent=2)


def fake_claude_credentials(tag: str, *, expires_at_ms: int = CLAUDE_EXPIRES_AT_MS) -> str:
    """A host ``~/.claude/.credentials.json`` with ``SECRET`` tokens."""
    return json.dumps({"claudeAiOauth": {
        "accessToken": f"sk-ant-oat01-SECRET-{tag}",
        "refreshToken": f"sk-ant-ort01-SECRET-{tag}",
        "expiresAt": expires_at_ms,
        "scopes": ["user:inference", "user:profile"],
    }}, indent=2)


def token_value(scenario: str, i: int) -> str:
    """The fake host value of route ``i``'s token in ``scenario``."""
    return f"tok-{scenario}-{i}-SECRET-0123456789"


def _secret_strings(text: str) -> list[str]:
    """Every string value in a JSON document that holds ``SECRET``."""
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str) and "SECRET" in v:
            out.append(v)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(json.loads(text))
    return out


@dataclass(frozen=True)
class ScenarioInputs:
    """A scenario made concrete under ``root`` (a scratch directory).

    ``host.state_root`` is ``root/state`` and ``host.home`` is ``root/home``;
    skills and the cwd also live under ``root``. ``secrets`` holds every
    token value the fake host carries (route tokens, the forwarded sign-in's
    tokens): none may ever appear on an argv or in a snapshot.
    """

    name: str
    spec: BottleSpec
    host: HostContext = field(repr=False)  # HostContext's own repr shows env values
    root: Path
    secrets: tuple[str, ...] = field(repr=False)

    def __iter__(self):
        """``spec, host = inputs`` (what `conformance.recording.record` takes)."""
        return iter((self.spec, self.host))


@dataclass(frozen=True)
class Scenario:
    """A named, documented (spec, host) recipe.

    ``needs``: capabilities a backend must declare for the scenario to apply
    (e.g. ``codex`` for a Codex bottle); tests over scenarios are gated on it
    at collection time (see `scenario_params`).
    """

    name: str
    description: str
    needs: frozenset[Capability]
    make_spec: Callable[[Path], BottleSpec] = field(repr=False, compare=False)
    routes_env: tuple[str, ...] = ()  # host env var per declared route, in order

    def build(self, root: Path) -> ScenarioInputs:
        """Make the scenario under ``root`` (created if missing): skill dirs,
        a cwd with a ``.git``, the fake home; then the spec and host."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        spec = self.make_spec(root)
        env = {var: token_value(self.name, i) for i, var in enumerate(self.routes_env)}
        home_files = {
            CODEX_AUTH: fake_codex_auth(self.name),
            CLAUDE_CREDENTIALS: fake_claude_credentials(self.name),
        }
        host = HostContext(
            env=env,
            home=root / "home",
            cwd=root / "work",
            home_files=home_files,
            state_root=root / "state",
        )
        secrets = list(env.values())
        for text in home_files.values():
            secrets += _secret_strings(text)
        redaction.plant_all(secrets, session=True)  # never in anything the suite writes
        return ScenarioInputs(self.name, spec, host, root, tuple(dict.fromkeys(secrets)))


# -- the scenarios ---------------------------------------------------------------


def _skill(root: Path, name: str) -> Path:
    path = root / "skills" / name
    path.mkdir(parents=True, exist_ok=True)
    # YAML front matter with name and description: both agents' skill
    # loaders want it (Codex skips a SKILL.md without it: codex-rs
    # core-skills/src/loader.rs parse_skill_file, MissingFrontmatter).
    (path / "SKILL.md").write_text(
        f"---\nname: {name}\ndescription: A skill the suite provisions.\n---\n# {name}\n",
        encoding="utf-8")
    return path


def _project(root: Path) -> Path:
    """A host checkout: ``root/project`` with a minimal ``.git``."""
    path = root / "project"
    git = path / ".git"
    git.mkdir(parents=True, exist_ok=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    return path


def _minimal(root: Path) -> BottleSpec:
    return BottleSpec(name="minimal-claude")


def _claude_routes(root: Path) -> BottleSpec:
    return BottleSpec(
        name="claude-routes",
        routes=(
            Route(host="api.anthropic.com", token_env="ANTHROPIC_TOKEN"),
            Route(host="api.example.com", token_env="EXAMPLE_API_KEY",
                  header="X-Api-Key", scheme=""),
        ),
        allow=("pypi.org",),
    )


def _git_upstreams_user(root: Path) -> BottleSpec:
    return BottleSpec(
        name="git-upstreams-user",
        upstreams=(
            Upstream(name="app", url="https://git.example.com/org/app.git"),
            Upstream(name="lib", url="git@git.example.com:org/lib.git"),
        ),
        git_user=GitUser(name="Ada Lovelace", email="ada@example.com"),
    )


def _codex_forward(root: Path) -> BottleSpec:
    return BottleSpec(name="codex-forward-creds", agent="codex", forward_host_credentials=True)


def _supervise_prompt_skills(root: Path) -> BottleSpec:
    return BottleSpec(
        name="supervise-prompt-skills",
        supervise=True,
        prompt=PROMPT_TEXT,
        skills=(_skill(root, "review"), _skill(root, "release-notes")),
        cwd=_project(root),
    )


def _codex_supervise_prompt_skills(root: Path) -> BottleSpec:
    return BottleSpec(
        name="codex-supervise-prompt-skills",
        agent="codex",
        supervise=True,
        prompt=PROMPT_TEXT,
        skills=(_skill(root, "review"), _skill(root, "release-notes")),
    )


def _empty_prompt(root: Path) -> BottleSpec:
    return BottleSpec(name="empty-prompt", prompt="", git_user=GitUser(email="dev@example.com"))


_CLAUDE = Capability.CLAUDE

_ALL = (
    Scenario(
        "minimal-claude",
        "Claude, nothing declared: first hop pipelock, two daemons, no git, "
        "no prompt flag, zero git user calls.",
        frozenset({_CLAUDE}), _minimal),
    Scenario(
        "claude-routes",
        "Claude with two egress routes (one Bearer, one custom header without "
        "scheme): first hop egress, egress CA trusted, token slots as bare "
        "names whose values come from the host env.",
        frozenset({_CLAUDE}), _claude_routes,
        routes_env=("ANTHROPIC_TOKEN", "EXAMPLE_API_KEY")),
    Scenario(
        "git-upstreams-user",
        "Two git upstreams behind git-gate (insteadOf per upstream) and a "
        "git_user with both name and email (one user.<x> call each, as node).",
        frozenset({_CLAUDE, Capability.GIT_GATE}), _git_upstreams_user),
    Scenario(
        "codex-forward-creds",
        "Codex forwarding the host's ChatGPT sign-in: auto routes for the "
        "Codex API hosts, placeholder ~/.codex/auth.json, CODEX_CA_CERTIFICATE.",
        frozenset({Capability.CODEX}), _codex_forward),
    Scenario(
        "supervise-prompt-skills",
        "supervise registered with claude mcp add, a non-empty prompt "
        "(--append-system-prompt-file), two skills, and a cwd whose .git is "
        "copied to /home/node/work.",
        frozenset({_CLAUDE, Capability.SUPERVISE}), _supervise_prompt_skills),
    Scenario(
        "codex-supervise-prompt-skills",
        "Codex with supervise (codex mcp add --url into ~/.codex/config.toml), a "
        "non-empty prompt (~/.codex/AGENTS.md, no Claude flag) and two skills "
        "(~/.agents/skills/<name>).",
        frozenset({Capability.CODEX, Capability.SUPERVISE}), _codex_supervise_prompt_skills),
    Scenario(
        "empty-prompt",
        "An explicitly empty prompt (no --append-system-prompt-file) and a "
        "git_user with only an email (exactly one user.email call).",
        frozenset({_CLAUDE}), _empty_prompt),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _ALL})


def scenario_params(clause_id: str, *, tier: str | None = None,
                    where: Callable[[Scenario], bool] | None = None,
                    names: Iterable[str] | None = None) -> list:
    """``pytest.param`` per scenario for ``@pytest.mark.parametrize("scenario", ...)``.

    Each param carries ``@clause(clause_id, tier=tier, needs=scenario.needs)``,
    so the plugin gates it at collection time: a backend that lacks one of
    the scenario's capabilities reports that case NOT_SUPPORTED instead of
    running it. ``where`` / ``names`` pick a subset (default: all, in
    registry order). The test needs no ``@clause`` of its own.
    """
    chosen = [SCENARIOS[n] for n in names] if names is not None else list(SCENARIOS.values())
    if where is not None:
        chosen = [s for s in chosen if where(s)]
    return [
        pytest.param(s, id=s.name,
                     marks=clause(clause_id, tier=tier, needs=sorted(s.needs)))
        for s in chosen
    ]
