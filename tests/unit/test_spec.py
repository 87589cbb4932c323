"""The spec loader: good specs become the expected `BottleSpec`; every kind
of bad input is ONE line naming file, key path and line, exit 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bottle_ref.cli import main
from bottle_api.spec import (
    MAX_SPEC_BYTES,
    BottleSpec,
    GitUser,
    Route,
    SpecError,
    Upstream,
    load_spec,
    parse_spec,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, content: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# -- good specs ----------------------------------------------------------------
FULL = """\
name: demo
agent: codex
image: my-image:1
prompt: "be careful"
skills:
  - skills/review
  - /ABS/lint
cwd: repo
git_user: {name: Ada, email: ada@example.org}
git:
  upstreams:
    - {name: origin, url: "git@github.com:org/repo.git", identity: ~/.ssh/id_ed25519}
    - name: mirror.v2
      url: https://git.example.org/repo.git
egress:
  routes:
    - {host: api.anthropic.com, token_env: ANTHROPIC_TOKEN, header: Authorization, scheme: Bearer}
    - host: "*.example.com"
      token_env: _OTHER_2
      header: X-Api-Key
      scheme: ""
  allow: [pypi.org]
  tls_passthrough: [files.pythonhosted.org]
forward_host_credentials: true
supervise: false
"""


@pytest.fixture
def full_spec_file(tmp_path: Path) -> Path:
    for skill in (tmp_path / "skills" / "review", tmp_path / "elsewhere" / "lint"):
        skill.mkdir(parents=True)  # a codex spec: each skill must be one Codex loads
        (skill / "SKILL.md").write_text(f"---\ndescription: {skill.name}\n---\n")
    (tmp_path / "repo").mkdir()
    text = FULL.replace("/ABS/lint", str(tmp_path / "elsewhere" / "lint"))
    return write(tmp_path, text)


def test_full_spec_parses_to_expected_dataclass(full_spec_file: Path, tmp_path: Path):
    spec = load_spec(full_spec_file)
    assert spec == BottleSpec(
        name="demo",
        agent="codex",
        image="my-image:1",
        prompt="be careful",
        skills=(tmp_path / "skills" / "review", tmp_path / "elsewhere" / "lint"),
        cwd=tmp_path / "repo",
        git_user=GitUser(name="Ada", email="ada@example.org"),
        upstreams=(
            Upstream("origin", "git@github.com:org/repo.git", "~/.ssh/id_ed25519"),
            Upstream("mirror.v2", "https://git.example.org/repo.git", None),
        ),
        routes=(
            Route("api.anthropic.com", "ANTHROPIC_TOKEN", "Authorization", "Bearer"),
            Route("*.example.com", "_OTHER_2", "X-Api-Key", ""),
        ),
        allow=("pypi.org",),
        tls_passthrough=("files.pythonhosted.org",),
        forward_host_credentials=True,
        supervise=False,
    )
    assert all(p.is_absolute() for p in spec.skills) and spec.cwd.is_absolute()
    assert spec.source == str(full_spec_file)


def test_lines_map_every_key_to_its_line(full_spec_file: Path):
    lines = load_spec(full_spec_file).lines
    expected = {
        "name": 1, "agent": 2, "image": 3, "prompt": 4, "skills": 5, "skills[0]": 6,
        "skills[1]": 7, "cwd": 8, "git_user": 9, "git_user.name": 9, "git_user.email": 9,
        "git": 10, "git.upstreams": 11, "git.upstreams[0]": 12, "git.upstreams[0].name": 12,
        "git.upstreams[0].url": 12, "git.upstreams[0].identity": 12, "git.upstreams[1]": 13,
        "git.upstreams[1].name": 13, "git.upstreams[1].url": 14, "egress": 15,
        "egress.routes": 16, "egress.routes[0]": 17, "egress.routes[0].token_env": 17,
        "egress.routes[1]": 18, "egress.routes[1].host": 18,
        "egress.routes[1].token_env": 19, "egress.routes[1].header": 20,
        "egress.routes[1].scheme": 21, "egress.allow": 22, "egress.allow[0]": 22,
        "egress.tls_passthrough": 23, "egress.tls_passthrough[0]": 23,
        "forward_host_credentials": 24, "supervise": 25,
    }
    for key, line in expected.items():
        assert lines[key] == line, key


def test_spec_error_after_loading_points_at_the_line(full_spec_file: Path):
    spec = load_spec(full_spec_file)
    err = spec.error("egress.routes[1].token_env", "host env var _OTHER_2 is not set")
    assert str(err) == (f"{full_spec_file}:19: egress.routes[1].token_env: "
                        "host env var _OTHER_2 is not set")
    assert (err.file, err.key, err.line) == (str(full_spec_file), "egress.routes[1].token_env", 19)


def test_minimal_spec_gets_defaults(tmp_path: Path):
    spec = parse_spec("name: demo\n", source="x.yaml", base_dir=tmp_path)
    assert spec == BottleSpec(name="demo")
    assert (spec.agent, spec.image, spec.prompt, spec.skills, spec.cwd) == ("claude", None, "", (), None)
    assert spec.git_user.is_empty() and not spec.supervise and not spec.forward_host_credentials


def test_null_optional_values_mean_default(tmp_path: Path):
    text = "name: demo\nimage:\nprompt:\nskills:\ncwd:\ngit_user:\ngit:\negress:\n"
    assert parse_spec(text, base_dir=tmp_path) == BottleSpec(name="demo")


def test_route_header_and_scheme_default(tmp_path: Path):
    spec = parse_spec("name: demo\negress: {routes: [{host: a.example, token_env: T}]}\n")
    assert spec.routes == (Route("a.example", "T", "Authorization", "Bearer"),)


def test_relative_paths_resolve_against_the_spec_file_not_cwd(tmp_path, monkeypatch):
    (tmp_path / "proj" / "skills" / "s").mkdir(parents=True)
    write(tmp_path / "proj", "name: demo\nskills: [skills/s]\ncwd: .\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec("proj/spec.yaml")
    assert spec.skills == ((tmp_path / "proj" / "skills" / "s").resolve(),)
    assert spec.cwd == (tmp_path / "proj").resolve()
    assert spec.source == "proj/spec.yaml"


def test_parse_spec_defaults_base_dir_to_cwd(tmp_path, monkeypatch):
    (tmp_path / "sk").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_spec("name: demo\nskills: [sk]\n").skills == ((tmp_path / "sk").resolve(),)


def test_utf8_bom_is_accepted(tmp_path: Path):
    assert load_spec(write(tmp_path, b"\xef\xbb\xbfname: demo\n")).name == "demo"


def test_lines_are_not_part_of_equality(tmp_path: Path):
    a = parse_spec("name: demo\n")
    b = parse_spec("\n\nname: demo\n")
    assert a == b and a.lines != b.lines


def test_spec_error_is_a_value_error_with_parts():
    with pytest.raises(SpecError) as info:
        parse_spec("name: demo\nsupervise: 1\n", source="s.yaml")
    assert isinstance(info.value, ValueError)
    assert (info.value.file, info.value.key, info.value.line) == ("s.yaml", "supervise", 2)


def test_alias_bomb_is_refused_at_the_first_anchor():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    with pytest.raises(SpecError, match=r"^<spec>:1: a: YAML anchors \(&a\) are not allowed"):
        parse_spec(bomb)


# -- bad input: one kind per case, through the CLI -------------------------------
# (id, file content, key path or None, line or None, phrase in the message)
BAD = [
    ("unknown-key", "name: demo\npromt: hi\n", "promt", 2, "did you mean 'prompt'?"),
    ("unknown-nested-key",
     "name: demo\negress:\n  routes:\n    - host: a.example\n      token_env: T\n      schem: B\n",
     "egress.routes[0].schem", 6, "did you mean 'scheme'?"),
    ("unknown-key-no-suggestion", "name: demo\nzzz: 1\n", "zzz", 2, "expected one of: name, agent"),
    ("wrong-type-list", "name: demo\nskills: skills/review\n", "skills", 2, "must be a list"),
    ("wrong-type-string", "name: demo\nimage: 3\n", "image", 2, "must be a string"),
    ("wrong-type-mapping", "name: demo\ngit_user: Ada\n", "git_user", 2, "must be a mapping"),
    ("yes-is-not-a-boolean", "name: demo\nsupervise: yes\n", "supervise", 2, "true or false"),
    ("quoted-boolean", "name: demo\nforward_host_credentials: 'true'\n",
     "forward_host_credentials", 2, "true or false"),
    ("bad-name", "agent: claude\nname: Demo_1\n", "name", 2, "not a valid bottle name"),
    ("name-too-long", "name: " + "a" * 41 + "\n", "name", 1, "at most 40"),
    ("reserved-name", "name: bottles\n", "name", 1, "reserved"),
    ("missing-name", "agent: claude\n", "name", 1, "required key is missing"),
    ("bad-agent", "name: demo\nagent: gpt\n", "agent", 2, "expected one of: claude, codex"),
    ("missing-skill-dir", "name: demo\nskills:\n  - skills/nope\n", "skills[0]", 3,
     "skill directory not found"),
    ("cwd-not-a-dir", "name: demo\ncwd: spec.yaml\n", "cwd", 2, "is not a directory"),
    ("duplicate-key", "name: demo\nagent: claude\nname: other\n", "name", 3,
     "duplicate key 'name' (first defined on line 1)"),
    ("duplicate-nested-key",
     "name: demo\negress:\n  routes:\n    - host: a.example\n      host: b.example\n",
     "egress.routes[0].host", 5, "duplicate key 'host'"),
    ("bad-upstream-name", "name: demo\ngit:\n  upstreams:\n    - {name: 'a b', url: x}\n",
     "git.upstreams[0].name", 4, "not a valid upstream name"),
    ("duplicate-upstream-name",
     "name: demo\ngit:\n  upstreams:\n    - {name: o, url: x}\n    - {name: o, url: y}\n",
     "git.upstreams[1].name", 5, "already used by git.upstreams[0]"),
    ("upstream-missing-url", "name: demo\ngit:\n  upstreams:\n    - name: o\n",
     "git.upstreams[0].url", 4, "required key is missing"),
    ("route-host-with-scheme",
     "name: demo\negress:\n  routes:\n    - {host: 'https://api.example.com', token_env: T}\n",
     "egress.routes[0].host", 4, "not a hostname"),
    ("route-host-with-port",
     "name: demo\negress:\n  routes:\n    - {host: 'api.example.com:443', token_env: T}\n",
     "egress.routes[0].host", 4, "not a hostname"),
    ("allow-not-a-host", "name: demo\negress:\n  allow: ['pypi.org/simple']\n",
     "egress.allow[0]", 3, "not a hostname"),
    ("allow-tld-wildcard", "name: demo\negress:\n  allow: ['*.com']\n",
     "egress.allow[0]", 3, "wildcard over a whole top-level domain"),
    ("route-tld-wildcard", "name: demo\negress:\n  routes:\n    - {host: '*.io', token_env: T}\n",
     "egress.routes[0].host", 4, "wildcard over a whole top-level domain"),
    ("bad-token-env", "name: demo\negress:\n  routes:\n    - {host: a.example, token_env: 1TOKEN}\n",
     "egress.routes[0].token_env", 4, "NAME of a host environment variable"),
    ("bad-header", "name: demo\negress:\n  routes:\n"
     "    - {host: a.example, token_env: T, header: 'X Bad'}\n",
     "egress.routes[0].header", 4, "not a valid HTTP header name"),
    ("header-not-a-string", "name: demo\negress:\n  routes:\n"
     "    - {host: a.example, token_env: T, header: 12}\n",
     "egress.routes[0].header", 4, "must be a string"),
    ("non-mapping-document", "- name: demo\n", None, 1, "must be a mapping, got a list"),
    ("scalar-document", "just text\n", None, 1, "must be a mapping, got a string"),
    ("empty-file", "", None, None, "spec is empty"),
    ("comments-only", "# nothing here\n\n", None, None, "spec is empty"),
    ("multiple-documents", "name: a\n---\nname: b\n", None, 2, "more than one YAML document"),
    ("anchor", "name: demo\nprompt: &p hello\n", "prompt", 2, "anchors (&p) are not allowed"),
    ("alias", "name: demo\nimage: *img\n", "image", 2, "aliases (*img) are not allowed"),
    ("python-tag", "name: demo\nimage: !!python/name:os.system x\n", "image", 2,
     "a value tagged !!python/name:os.system"),
    ("non-utf8", b"name: demo\nprompt: caf\xe9\n", None, 2, "not valid UTF-8"),
    ("control-character", "name: demo\nprompt: a\x07b\n", None, 2, "unacceptable character"),
    ("yaml-syntax", "name: demo\negress:\n  allow: [pypi.org\nsupervise: true\n", None, 4,
     "YAML syntax error"),
    ("bad-indentation", "name: demo\n  agent: claude\n", None, 2, "YAML syntax error"),
    ("too-deep", "name: demo\nprompt: " + "[" * 50 + "]" * 50 + "\n", "prompt" + "[0]" * 15, 2,
     "nested more than"),
    ("non-string-key", "name: demo\n1: x\n", None, 2, "keys must be strings"),
    ("newline-in-key", 'name: demo\n"a\\nb": x\n', "a b", 2, "unknown key 'a b'"),
    ("too-big", "name: demo\n" + "#" * MAX_SPEC_BYTES + "\n", None, None, "limit is 1 MiB"),
]


@pytest.mark.parametrize("content, key, line, phrase", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spec_is_one_line_exit_2(tmp_path, capsys, content, key, line, phrase):
    path = write(tmp_path, content)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("bottle-ref: error: ")
    where = f"{path}:{line}" if line else str(path)
    prefix = f"bottle-ref: error: {where}: " + (f"{key}: " if key else "")
    assert err.startswith(prefix), err
    assert phrase in err


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_spec_is_one_line_exit_2(tmp_path, capsys, kind):
    path = tmp_path / "nope.yaml"
    if kind == "directory":
        path.mkdir()
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"bottle-ref: error: {path}: cannot read spec: ")
    assert ("No such file" if kind == "missing" else "is a directory") in err


def test_size_is_checked_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path, b"name: demo\n")
    with path.open("r+b") as f:  # sparse: large size, tiny read cost
        f.truncate(MAX_SPEC_BYTES + 1)

    def no_read(*a, **k):
        raise AssertionError("file was read despite its size")

    monkeypatch.setattr(Path, "open", no_read)
    monkeypatch.setattr(__import__("os"), "open", no_read)
    with pytest.raises(SpecError, match=r"spec too large \(1048577 bytes; the limit is 1 MiB\)"):
        load_spec(path)


def test_token_env_value_is_not_echoed(tmp_path):
    secret = "sk-ant-api03-THIS-LOOKS-LIKE-A-REAL-TOKEN"
    text = f"name: demo\negress:\n  routes:\n    - {{host: a.example, token_env: '{secret}'}}\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert secret not in str(info.value)
    assert info.value.key == "egress.routes[0].token_env"


def test_duplicate_route_hosts_are_refused():
    text = "name: demo\negress:\n  routes:\n    - {host: a.example, token_env: A}\n" \
           "    - {host: A.Example, token_env: B}\n"
    with pytest.raises(SpecError, match=r":5: egress.routes\[1\].host: .*already has a route"):
        parse_spec(text)


def test_duplicate_skill_names_are_refused(tmp_path):
    (tmp_path / "a" / "review").mkdir(parents=True)
    (tmp_path / "b" / "review").mkdir(parents=True)
    with pytest.raises(SpecError, match=r"skills\[1\]: two skills are named 'review'"):
        parse_spec("name: demo\nskills: [a/review, b/review]\n", base_dir=tmp_path)


def test_skill_directory_without_a_name_is_refused(tmp_path):
    """'/' would copy the host's whole filesystem into the guest's skills dir."""
    with pytest.raises(SpecError, match=r":2: skills\[0\]: a skill directory needs a name"):
        parse_spec("name: demo\nskills: [/]\n", base_dir=tmp_path)


# -- examples ------------------------------------------------------------------
def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def test_the_three_examples_exist():
    assert {p.name for p in example_files()} >= {"minimal.yaml", "full.yaml", "codex.yaml"}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_validates(path, capsys):
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"ok: [a-z0-9-]+\n", out) and err == ""


def test_minimal_example_is_claude_and_nothing_else():
    spec = load_spec(EXAMPLES / "minimal.yaml")
    assert spec == BottleSpec(name=spec.name, agent="claude")


def test_full_example_has_every_feature():
    spec = load_spec(EXAMPLES / "full.yaml")
    assert spec.agent == "claude" and spec.prompt.strip() and spec.supervise
    assert Route("api.anthropic.com", "ANTHROPIC_TOKEN", "Authorization", "Bearer") in spec.routes
    assert spec.upstreams and all(u.identity for u in spec.upstreams)
    assert not spec.git_user.is_empty()
    assert spec.skills == ((EXAMPLES / "skills" / "review").resolve(),)
    assert spec.cwd == EXAMPLES.parent.resolve()  # the checkout the example lives in
    assert spec.limits.memory_mib == 4096 and spec.limits.pids == 4096


def test_codex_example_forwards_host_credentials():
    spec = load_spec(EXAMPLES / "codex.yaml")
    assert spec.agent == "codex" and spec.forward_host_credentials is True


def test_review_skill_has_frontmatter():
    text = (EXAMPLES / "skills" / "review" / "SKILL.md").read_text(encoding="utf-8")
    front = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert front and "name: review" in front.group(1) and "description: " in front.group(1)


# -- bad files and odd paths (issue 11) --------------------------------------------

def one_line_exit_2(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith("bottle-ref: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("kind", ["fifo", "chardev", "socket"])
def test_non_regular_spec_is_refused_before_opening(tmp_path, capsys, monkeypatch, kind):
    import os
    import socket

    if kind == "fifo":
        path = tmp_path / "spec.yaml"
        os.mkfifo(path)  # opening it for reading would block until a writer comes
        phrase = "is a FIFO"
    elif kind == "chardev":
        path, phrase = Path("/dev/zero"), "is a character device"
    else:
        path = tmp_path / "s.sock"
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        phrase = "is a socket"
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    err = one_line_exit_2(capsys, ["validate", str(path)])
    assert err.startswith(f"bottle-ref: error: {path}: cannot read spec: {phrase}")
    assert "not a regular file" in err
    assert str(path) not in map(str, opened)  # refused on stat, never opened


def test_file_swapped_for_a_fifo_after_stat_does_not_hang(tmp_path, monkeypatch):
    """The descriptor is opened O_NONBLOCK and checked again (TOCTOU)."""
    import os
    import stat as stat_mod

    from bottle_api import spec as spec_mod

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    real_stat = os.stat

    def lying_stat(p, *a, **k):
        st = real_stat(p, *a, **k)
        if str(p) == str(fifo):  # pretend it was still a regular file at stat time
            return os.stat_result((stat_mod.S_IFREG | 0o644, *tuple(st)[1:]))
        return st

    monkeypatch.setattr(spec_mod.os, "stat", lying_stat)
    with pytest.raises(SpecError, match="is a FIFO"):
        load_spec(fifo)


PATH_CASES = [
    ("unknown-user", "cwd", '"~nosuchuser-h11"', "no such user 'nosuchuser-h11'"),
    ("unknown-user-skill", "skills[0]", '["~nosuchuser-h11/skills/x"]',
     "no such user 'nosuchuser-h11'"),
    ("loop", "skills[0]", "[loop]", "symlink loop"),
    ("long-component", "cwd", '"' + "d" * 300 + '"', "longer than 255 bytes"),
    ("long-path", "cwd", '"' + "/".join(["d" * 200] * 25) + '"', "longer than 4095 bytes"),
    ("nul", "cwd", '"a\\0b"', "contains a NUL byte"),
    ("surrogate", "cwd", '"\\ud800"', "lone surrogate (U+D800)"),
    ("surrogate-skill", "skills[0]", '["x\\udfff"]', "lone surrogate (U+DFFF)"),
    ("file-not-dir", "cwd", "afile", "is not a directory"),
    ("missing", "cwd", "nope/deeper", "not found"),
]


@pytest.mark.parametrize("key, value, phrase", [c[1:] for c in PATH_CASES],
                         ids=[c[0] for c in PATH_CASES])
def test_every_path_error_is_one_line_with_file_line_and_key(tmp_path, capsys, key, value,
                                                             phrase):
    (tmp_path / "loop").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop")
    (tmp_path / "afile").write_text("")
    top = key.split("[")[0]
    path = write(tmp_path, f"name: demo\n{top}: {value}\n")
    err = one_line_exit_2(capsys, ["validate", str(path)])
    assert err.startswith(f"bottle-ref: error: {path}:2: {key}: "), err
    assert phrase in err


def test_unreadable_directory_is_one_line(tmp_path, capsys, monkeypatch):
    """As root every directory is readable, so the permission check is
    driven through os.access (what the loader asks)."""
    import os

    from bottle_api import spec as spec_mod

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(spec_mod.os, "access",
                        lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k))
    path = write(tmp_path, "name: demo\nskills: [locked]\n")
    err = one_line_exit_2(capsys, ["validate", str(path)])
    assert err.startswith(f"bottle-ref: error: {path}:2: skills[0]: skill directory cannot "
                          "be read (permission denied)")


def test_search_denied_on_a_parent_is_one_line(tmp_path, capsys, monkeypatch):
    """EACCES from stat (a parent without x permission, as a normal user)."""
    import errno

    real_stat = Path.stat

    def denied(self, *a, **k):
        if self.name == "inner":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *a, **k)

    (tmp_path / "outer" / "inner").mkdir(parents=True)
    monkeypatch.setattr(Path, "stat", denied)
    path = write(tmp_path, "name: demo\ncwd: outer/inner\n")
    err = one_line_exit_2(capsys, ["validate", str(path)])
    assert err.startswith(f"bottle-ref: error: {path}:2: cwd: cwd cannot be read "
                          "(permission denied)")


def test_tilde_of_a_known_user_expands(tmp_path, monkeypatch):
    import pwd

    me = pwd.getpwuid(__import__("os").getuid())
    spec = parse_spec(f"name: demo\ncwd: '~{me.pw_name}'\n", base_dir=tmp_path)
    assert spec.cwd == Path(me.pw_dir).resolve()


# -- a small bounded fuzz of the loader ----------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PATHISH = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["~", "~root", "~nosuchuser-h11", "/", ".", "..", "loop", "a\x00b",
                     "\ud800", "d" * 300, "/".join(["d" * 200] * 25), "afile", "sub"]),
    st.text(alphabet="~/.\\\x00ad\ud800", max_size=30),
)
_KEYS = st.sampled_from(["cwd", "skills", "prompt", "image", "name", "agent", "bogus"])


def _yaml_str(value: str) -> str:
    """A double-quoted YAML scalar for any str (surrogates and NUL as escapes)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF or code in (0x7F, 0xFFFE, 0xFFFF):
            out.append(f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(_KEYS, _PATHISH), max_size=4),
       raw=st.binary(max_size=64))
def test_fuzz_loader_only_ever_returns_a_spec_or_one_line_spec_error(tmp_path, entries, raw):
    base = tmp_path / "fuzz"
    if not base.exists():
        base.mkdir()
        (base / "loop").symlink_to("loop")
        (base / "afile").write_text("")
        (base / "sub").mkdir()
    lines = ["name: demo"]
    for key, value in entries:
        lines.append(f"{key}: [{_yaml_str(value)}]" if key == "skills"
                     else f"{key}: {_yaml_str(value)}")
    path = base / "spec.yaml"
    for data in ("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n", raw):
        path.write_bytes(data)
        try:
            spec = load_spec(path)
        except SpecError as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith(str(path)), text
            text.encode("utf-8")  # printable: no lone surrogate escapes into the message
        else:
            assert isinstance(spec, BottleSpec)
            for p in (*spec.skills, *([spec.cwd] if spec.cwd else [])):
                assert p.is_dir()


# -- issue 14 item 5: a codex bottle's skills must be ones Codex loads ----------------
# codex-rs core-skills/src/loader.rs parse_skill_file: SKILL.md needs YAML front
# matter between '---' lines with a non-empty description (checked offline with
# Codex 0.169.0: "missing YAML frontmatter delimited by ---", "missing field
# `description`", and the skill is left out of the session).


def _skill_dir(root: Path, name: str, text: str | None) -> Path:
    d = root / name
    d.mkdir()
    if text is not None:
        (d / "SKILL.md").write_text(text, encoding="utf-8")
    return d


@pytest.mark.parametrize("text, phrase", [
    (None, "SKILL.md is missing"),
    ("# s\nno front matter\n", "does not open with YAML front matter"),
    ("---\nname: s\ndescription: d\n", "no closing '---'"),
    ("---\n---\nbody\n", "front matter is empty"),
    ("---\nname: s\n---\nbody\n", "no 'description'"),
    ("---\n- a\n- b\n---\n", "not a YAML mapping"),
    ("---\ndescription: [unclosed\n---\n", "not valid YAML"),
    ("---\ndescription: " + "x" * 1025 + "\n---\n", "longer than 1024"),
    ("---\nname: " + "n" * 65 + "\ndescription: d\n---\n", "longer than 64"),
    ("---\nd: &a [1]\ndescription: *a\n---\n", "anchors"),
])
def test_codex_refuses_a_skill_codex_cannot_load(tmp_path: Path, text, phrase):
    _skill_dir(tmp_path, "s", text)
    spec_text = "name: demo\nagent: codex\nskills:\n  - s\n"
    with pytest.raises(SpecError) as err:
        parse_spec(spec_text, source="spec.yaml", base_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and phrase in message, message
    assert message.startswith("spec.yaml:4: skills[0]: agent codex cannot load skill 's'")
    # Claude Code reads the same directory without that rule.
    assert parse_spec(spec_text.replace("codex", "claude"), base_dir=tmp_path).skills


def test_codex_accepts_a_skill_with_front_matter(tmp_path: Path):
    _skill_dir(tmp_path, "s", "---\nname: s\ndescription: Review a change.\n---\n# s\n")
    _skill_dir(tmp_path, "t", "---\ndescription: name defaults to the directory\n---\n")
    spec = parse_spec("name: demo\nagent: codex\nskills: [s, t]\n", base_dir=tmp_path)
    assert [p.name for p in spec.skills] == ["s", "t"]


def test_codex_skill_refusal_does_not_depend_on_key_order(tmp_path: Path):
    _skill_dir(tmp_path, "s", "# no front matter\n")
    with pytest.raises(SpecError, match=r"^spec.yaml:2: skills\[0\]: agent codex"):
        parse_spec("name: demo\nskills: [s]\nagent: codex\n", source="spec.yaml",
                   base_dir=tmp_path)


def test_bad_codex_skill_is_one_line_exit_2(tmp_path: Path, capsys):
    _skill_dir(tmp_path, "s", "# no front matter\n")
    spec = write(tmp_path, "name: demo\nagent: codex\nskills: [s]\n")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "agent codex cannot load skill 's'" in err, err


# -- issue 16: limits -----------------------------------------------------------


def test_limits_default_and_override():
    from bottle_api.spec import Limits, parse_spec

    assert parse_spec("name: a\n").limits == Limits(4096, 4096, 2.0)
    spec = parse_spec("name: a\nlimits: {memory_mib: 1024, pids: 256, cpus: 0.5}\n")
    assert spec.limits == Limits(memory_mib=1024, pids=256, cpus=0.5)
    assert parse_spec("name: a\nlimits: {cpus: 3}\n").limits == Limits(cpus=3.0)


@pytest.mark.parametrize("text,needle", [
    ("limits: {memory_mib: 4}", "limits.memory_mib: 4 is out of range (256 to 1048576)"),
    ("limits: {pids: 1.5}", "limits.pids: must be an integer, got a number '1.5'"),
    ("limits: {cpus: lots}", "limits.cpus: must be a number, got a string 'lots'"),
    ("limits: {cpus: .nan}", "limits.cpus: '.nan' is not a number"),
    ("limits: {cpus: 0}", "limits.cpus: 0 is out of range"),
    ("limits: {pid: 64}", "unknown key 'pid' (did you mean 'pids'?)"),
    ("limits: [1]", "limits: this must be a mapping, got a list"),
])
def test_bad_limits_are_one_line_errors(text, needle):
    from bottle_api.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec(f"name: a\n{text}\n")
    assert needle in str(err.value) and "\n" not in str(err.value)
