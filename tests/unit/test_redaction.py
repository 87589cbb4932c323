"""The suite's own secret hygiene: every planted secret, in its common
encodings, is absent from everything the suite writes (terminal, failure
text, captured output, JUnit XML, JSON and markdown reports), and a snapshot
that would hold one is refused, also with --snapshot-update."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from conformance import redaction
from conformance.cli import main
from conformance.snapshot_ext import SecretInSnapshot, extension_for

pytest_plugins = ["pytester"]

TOKEN = "tok-UNIT~Zm9vYmFyYmF6cXV4LXNlY3JldA"


def _forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "literal": value,
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "url": quote(value, safe=""),
        "inside base64(user:token)": base64.b64encode(b"user:" + raw).decode(),
        "inside base64(Bearer token\\n)": base64.b64encode(b"Bearer " + raw + b"\n").decode(),
        "inside hex(env file)": ("A=1\nTOKEN=" + value + "\n").encode().hex(),
        "json-escaped": json.dumps(value + '"x')[1:-1],
    }


@pytest.fixture
def registry():
    reg = redaction.Registry()
    reg.plant(TOKEN + '"x')  # a value needing JSON escapes
    reg.plant(TOKEN)
    return reg


@pytest.mark.parametrize("kind", list(_forms(TOKEN)))
def test_each_encoding_is_found_and_redacted(registry, kind):
    text = f"argv: docker run -e X={_forms(TOKEN)[kind]} img"
    assert registry.find(text), kind
    out = registry.redact(text)
    assert redaction.LABEL in out
    # What is left of an encoded blob after redaction never decodes to the token.
    assert TOKEN not in out and _forms(TOKEN)["base64url"][:16] not in out


def test_unrelated_text_is_untouched(registry):
    text = "[SECRET-ARGV] No argv a backend runs MUST contain a token value <SECRET> tok-UNIT"
    assert registry.find(text) == 0 and registry.redact(text) == text


def test_per_test_values_are_retired_still_redacted_session_values_kept():
    """issue 17: a value planted by an earlier test and re-emitted later is
    still redacted; only the snapshot refusal (find_current) forgets it."""
    reg = redaction.Registry()
    reg.plant("session-secret-value", session=True)
    reg.plant("per-test-secret-value")
    assert reg.find_current("per-test-secret-value")
    reg.end_test()
    assert reg.find("session-secret-value") and reg.find_current("session-secret-value")
    assert reg.find("per-test-secret-value") and not reg.find_current("per-test-secret-value")
    assert reg.redact("x per-test-secret-value y") == f"x {redaction.LABEL} y"
    reg.plant("planted-after-indexing")  # the index grows in place
    assert reg.find("planted-after-indexing") and reg.find("per-test-secret-value")


def test_host_env_secrets_are_planted_paths_are_not():
    reg = redaction.Registry()
    reg.plant_host_env({"GH_TOKEN": "ghp_realhostvalue123", "SSH_AUTH_SOCK": "/tmp/ssh-x/agent",
                        "PATH": "/usr/bin:/bin", "MY_API_KEY": "short", "AWS_SECRET_ACCESS_KEY":
                        "wJalrXUtnFEMIK7MDENG"})
    assert reg.values == {"ghp_realhostvalue123", "wJalrXUtnFEMIK7MDENG"}


def test_well_known_session_names_are_not_secrets_session_secrets_are():
    """`nox -s conformance` exports NOX_CURRENT_SESSION=conformance: planted,
    the suite's own name made every argv snapshot a refused secret."""
    reg = redaction.Registry()
    reg.plant_host_env({"NOX_CURRENT_SESSION": "conformance", "DESKTOP_SESSION": "gnome-classic",
                        "XDG_SESSION_TYPE": "wayland-session",
                        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus",
                        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEJr-session", "MY_SESSION": "s3cr3t-sess-1"})
    assert reg.values == {"FwoGZXIvYXdzEJr-session", "s3cr3t-sess-1"}


def test_matching_is_fast_on_large_text(registry):
    import time

    for i in range(2000):
        registry.plant(f"generated-secret-{i:06d}-xyz")
    text = ("docker run --rm -e A=1 image:tag " * 3000) + TOKEN
    t0 = time.monotonic()
    assert registry.find(text) == 1
    assert time.monotonic() - t0 < 2


def test_snapshot_serialize_refuses_a_secret(tmp_path):
    redaction.plant(TOKEN)
    try:
        ext = extension_for(tmp_path)()
        with pytest.raises(SecretInSnapshot, match=r"^\[SECRET-ARGV\] refused") as exc:
            ext.serialize("docker\nrun\n-e\nX=" + _forms(TOKEN)["base64"] + "\n")
        assert TOKEN not in str(exc.value)
        assert ext.serialize("docker\nrun\n-e\nX\n") == "docker\nrun\n-e\nX\n"
    finally:
        redaction.REGISTRY.end_test()


# -- end to end: everything the suite writes -----------------------------------------------

LEAKY = f'''
import base64, sys
import pytest
from syrupy.assertion import SnapshotAssertion
from conformance import redaction
from conformance.markers import clause
from conformance.snapshot_ext import extension_for

TOKEN = {TOKEN!r}
HOST = "hostsecret-from-os-environ-42"


@clause("SECRET-ARGV")
def test_assert_message():
    redaction.plant(TOKEN)
    print("stdout has", TOKEN, base64.b64encode(TOKEN.encode()).decode())
    print("stderr has", TOKEN.encode().hex(), file=sys.stderr)
    assert False, f"argv held {{TOKEN}} and {{base64.b64encode(b'u:' + TOKEN.encode()).decode()}}"


@clause("SECRET-PLAN")
def test_backend_exception_text():
    redaction.plant(TOKEN)
    raise RuntimeError(f"backend failed: docker run -e T={{TOKEN}}")


@clause("SNAP-MATCH")
def test_snapshot_with_planted_secret(snapshot: SnapshotAssertion, tmp_path_factory):
    redaction.plant(TOKEN)
    snap = snapshot.use_extension(extension_for("snaps"))
    assert "docker\\nrun\\n-e\\nT=" + TOKEN + "\\n" == snap(name="leaky")


@clause("SNAP-MATCH")
def test_snapshot_with_host_env_value(snapshot: SnapshotAssertion):
    snap = snapshot.use_extension(extension_for("snaps"))
    assert "docker\\nrun\\n-e\\nT=" + HOST + "\\n" == snap(name="hostleak")


@clause("SNAP-MATCH")
def test_stored_snapshot_holding_a_secret(snapshot: SnapshotAssertion):
    redaction.plant(TOKEN, session=True)
    snap = snapshot.use_extension(extension_for("stale"))
    assert "docker\\nrun\\n" == snap(name="stale")


@clause("PLAN-HOP")
def test_clean_snapshot(snapshot: SnapshotAssertion):
    snap = snapshot.use_extension(extension_for("snaps"))
    assert "docker\\nrun\\n" == snap(name="clean")
'''

FAKE = '''
from bottle_api.backend import Backend

class Fake(Backend):
    name = "fake"
    capabilities = frozenset({"codex"})
    def prepare(self, spec, host):
        raise NotImplementedError
    def launch(self, plan, runner, *, progress=print):
        raise NotImplementedError
'''


@pytest.fixture
def leaky(pytester, monkeypatch):
    pytester.makepyfile(test_leaky=LEAKY, fakeleak=FAKE)
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setenv("DEPLOY_API_TOKEN", "hostsecret-from-os-environ-42")
    monkeypatch.delenv("BOTTLE_REPORT", raising=False)
    return pytester


def _all_forms() -> list[str]:
    host = "hostsecret-from-os-environ-42"
    forms = [f for f in _forms(TOKEN).values()] + [host]
    # What a human could decode back: the aligned base64 of the token itself.
    forms += list(redaction._b64_aligned(TOKEN.encode(), None))
    return forms


@pytest.mark.parametrize("update", [False, True])
def test_nothing_the_suite_writes_holds_a_planted_secret(leaky, update, capsys):
    args = ["--bottle-backend=fakeleak:Fake", "--bottle-report=r.json", "--junitxml=j.xml",
            "-rA", "-p", "no:cacheprovider"]
    if update:
        args.append("--snapshot-update")
    # A snapshot written earlier (by hand, or by an older suite) that holds the
    # token: the SNAP-MATCH diff must not print it.
    (leaky.path / "stale").mkdir()
    (leaky.path / "stale" / "stale.txt").write_text(f"docker\nrun\n-e\nT={TOKEN}\n")
    result = leaky.runpytest(*args)
    # Without an update the clean snapshot is missing and the stale one differs.
    result.assert_outcomes(failed=4, passed=2) if update else result.assert_outcomes(failed=6)
    assert main(["report", str(leaky.path / "r.json")]) == 0
    markdown = capsys.readouterr().out
    written = {
        "terminal": result.stdout.str() + result.stderr.str(),
        "junit": (leaky.path / "j.xml").read_text(),
        "json report": (leaky.path / "r.json").read_text(),
        "markdown": markdown,
    }
    written.update({f"snapshot {p.name}": p.read_text()
                    for p in (leaky.path / "snaps").glob("*.txt")} if (
        leaky.path / "snaps").exists() else {})
    for where, text in written.items():
        for form in _all_forms():
            assert form not in text, f"{where} holds a secret form {form[:10]}..."
    assert "REDACTED" in written["junit"] and "REDACTED" in written["json report"]
    snaps = sorted(p.name for p in (leaky.path / "snaps").glob("*.txt")) if (
        leaky.path / "snaps").exists() else []
    assert snaps == (["clean.txt"] if update else []), "a snapshot holding a secret was written"
    assert "[SECRET-ARGV] refused: this argv snapshot would contain" in written["terminal"]


# -- issue 17: the warnings summary, the header, values planted in earlier tests -----------
TOKEN2 = "sk-i17-EARLIER-TEST-TOKEN-0f0f0f0f"
HOST2 = "hostsecret-i17-version-leak-77"

LEAKY2 = f'''
import base64, sys, warnings
from conformance import redaction
from conformance.markers import clause

TOKEN = {TOKEN2!r}
HOST = {HOST2!r}


@clause("SECRET-PLAN")
def test_a_plants():
    redaction.plant(TOKEN)  # this test's own secret: forgotten for matching after it
    warnings.warn(f"while planting: {{TOKEN}}")


@clause("SECRET-ARGV")
def test_b_reemits(record_property):
    # A leaky backend cached the earlier test's token and re-emits it here.
    print("stdout", TOKEN, TOKEN.encode().hex())
    print("stderr", base64.b64encode(TOKEN.encode()).decode(), file=sys.stderr)
    warnings.warn(f"deprecated thing saw {{TOKEN}} and {{HOST}}")
    record_property("leak", TOKEN)
    assert False, f"argv held {{TOKEN}}"
'''

FAKE2 = f'''
import os
from bottle_api.backend import Backend

class Fake(Backend):
    name = "fake"
    capabilities = frozenset({{"codex"}})
    version = os.environ["DEPLOY_API_TOKEN"]  # a backend that prints a host secret
    def prepare(self, spec, host):
        raise NotImplementedError
    def launch(self, plan, runner, *, progress=print):
        raise NotImplementedError
'''


def test_warnings_header_and_earlier_plants_are_redacted_everywhere(pytester, monkeypatch,
                                                                     capsys):
    pytester.makepyfile(test_leaky2=LEAKY2, fakeleak2=FAKE2)
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setenv("DEPLOY_API_TOKEN", HOST2)
    monkeypatch.delenv("BOTTLE_REPORT", raising=False)
    result = pytester.runpytest("--bottle-backend=fakeleak2:Fake", "--bottle-report=r.json",
                                "--junitxml=j.xml", "-rA", "-p", "no:cacheprovider",
                                "-p", "no:randomly", "-W", "always")
    result.assert_outcomes(failed=1, passed=1)
    assert main(["report", str(pytester.path / "r.json")]) == 0
    written = {
        "terminal": result.stdout.str() + result.stderr.str(),
        "junit": (pytester.path / "j.xml").read_text(),
        "json report": (pytester.path / "r.json").read_text(),
        "markdown": capsys.readouterr().out,
    }
    assert "warnings summary" in written["terminal"]
    forms = {**redaction.labelled_encodings(TOKEN2), **redaction.labelled_encodings(HOST2)}
    for where, text in written.items():
        for form, kind in forms.items():
            assert form not in text, f"{where} holds a secret ({kind}) {form[:12]}..."
    assert "<REDACTED>" in written["terminal"] and "REDACTED" in written["junit"]


# -- issue 16: compressed, then encoded ------------------------------------------------


@pytest.mark.parametrize(("encode", "label"), [
    (lambda b: __import__("base64").b64encode(__import__("gzip").compress(b)).decode(),
     "gzip+base64"),
    (lambda b: __import__("base64").urlsafe_b64encode(__import__("zlib").compress(b)).decode(),
     "zlib+base64"),
    (lambda b: __import__("base64").b64encode(__import__("bz2").compress(b)).decode(),
     "bzip2+base64"),
    (lambda b: __import__("gzip").compress(b).hex(), "gzip+hex"),
])
def test_compressed_then_encoded_token_is_found(encode, label):
    from conformance import redaction

    known = redaction.Registry()
    token = "tok~compressed-secret-0123456789"
    known.plant(token)
    text = f"sh -c 'echo {encode(('Bearer ' + token).encode())} | base64 -d | gunzip'"
    assert label in known.kinds(text)
    assert token not in known.redact(text) and redaction.LABEL in known.redact(text)
    other = f"echo {encode(b'nothing secret in here at all, just words')}"
    assert known.kinds(other) == []
