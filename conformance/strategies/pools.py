"""The fixed fake host, secret marks and text helpers every strategy shares."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# -- fixed fake host -----------------------------------------------------------

# Under /dev/null (a device, not a directory), so nothing can ever be created
# there, not even by root: a backend that writes during prepare, or a test
# that launches without `materialise`, fails loudly instead of littering the
# host's filesystem.
FAKE_ROOT = Path("/dev/null/bottle-conformance")
FAKE_HOME = FAKE_ROOT / "home"
FAKE_CWD = FAKE_ROOT / "work"
FAKE_STATE_ROOT = FAKE_ROOT / "state"
FAKE_SKILLS_ROOT = FAKE_ROOT / "skills"

# Every token value contains SECRET_MARK; no other generated text does.
SECRET_MARK = "~"
# A claim whose value is secret material inside generated real JWTs: a
# placeholder that copies unknown claims would carry it into the guest.
SECRET_CLAIM = "bottle_conformance_secret"

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"

# Host env names that mean something to a backend (image refs, loopback
# address, VM size, state dir): a route naming one of them as its token_env
# would make the "token" a config value, so routes never do.
_RESERVED_ENV = frozenset({"HOME", "PATH", "USER", "XDG_STATE_HOME", "DOCKER_HOST"})
_RESERVED_ENV_PREFIXES = ("BOTTLE_", "CLAUDE_BOTTLE_")

# Agent API hosts (DESIGN "domain rules"): a declared route may name one.
_API_HOSTS = ("api.anthropic.com", "chatgpt.com", "api.openai.com")


def _text(*, min_size: int = 0, max_size: int = 40, newlines: bool = True) -> st.SearchStrategy[str]:
    """Unicode text a YAML spec can carry: no surrogates, no NUL (argv
    cannot hold one), no SECRET_MARK."""
    exclude = "\x00" + SECRET_MARK + ("" if newlines else "\n\r\x85\u2028\u2029")
    return st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters=exclude),
        min_size=min_size, max_size=max_size,
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(obj: Any) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))
