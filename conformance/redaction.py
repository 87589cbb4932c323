"""Secret hygiene of the suite itself: nothing it writes holds a secret.

Every secret value the suite plants (scenario tokens and sign-ins,
generated tokens, PLAN-PURE's decoys) is registered here with `plant`, and
so are the values of the host's own secret-looking environment variables
(`plant_host_env`: a backend reading ``os.environ`` behind the suite's back
would otherwise carry them into snapshots). `find` / `redact` match each
value *and its common encodings*:

- literal, JSON-escaped, URL-encoded (``quote`` and ``quote_plus``);
- hex (lower and upper case);
- standard and URL-safe base64 at each of the three byte alignments, so a
  token inside a larger encoded blob (``base64("user:" + token)``, an env
  file encoded whole) is found too;
- compressed, then encoded: a base64/base64url/hex run that decodes to a
  gzip, zlib, bzip2 or xz stream is decompressed (bounded) and searched
  (`compressed_spans`).

The plugin redacts failure text, captured output, user properties (hence
JUnit XML), the JSON report, the terminal header and pytest's warnings
summary; the snapshot extension refuses to write or compare a snapshot
holding one (`refusal`). Values planted during one test are retired after
it (`end_test`): the snapshot refusal (`find_current`) no longer matches
them, but `find` / `redact` still do for the rest of the session, so a
backend that caches a token and re-emits it in a later test's output,
warning or report reason cannot print it (issue 17).

Matching is linear in the text: forms are indexed by their first
`WINDOW` characters, and the text is scanned once.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import json
import lzma
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import quote, quote_plus

LABEL = "<REDACTED>"
MIN_LEN = 8
WINDOW = 8
# `Registry._spans` searches form by form when the text is this many times
# longer than the index has windows (one C scan per form), else window by
# window (one Python step per character). A speed choice only: both find the
# same spans.
_FIND_RATIO = 32
# Host env names whose values are treated as secrets.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE|"
                          r"CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)
# Paths, sockets and URLs; and the well-known session *names* that hold no
# secret: nox's current session (``nox -s conformance`` exports
# NOX_CURRENT_SESSION=conformance, which planted the suite's own name and
# refused every snapshot), the desktop's and D-Bus's.
_NOT_SECRET_NAME = re.compile(r"_SOCK$|_FILE$|_PATH$|_DIR$|_URL$|^NOX_CURRENT_SESSION$|"
                              r"^DESKTOP_SESSION$|^XDG_SESSION_(ID|TYPE|CLASS|DESKTOP)$|"
                              r"^DBUS_SESSION_BUS_ADDRESS$", re.IGNORECASE)


def _b64_aligned(raw: bytes, altchars: bytes | None) -> Iterator[str]:
    """The base64 characters that encode ``raw`` alone, at each of the three
    byte offsets it can start at inside a longer encoded stream."""
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw, altchars=altchars).decode("ascii").rstrip("=")
        start = -(-k * 8 // 6)  # ceil: first character not touched by the pad bytes
        end = (k + len(raw)) * 8 // 6  # floor: last character fully inside raw
        piece = enc[start:end]
        if len(piece) >= MIN_LEN:
            yield piece


def labelled_encodings(value: str) -> dict[str, str]:
    """``value`` and the encoded forms of it `find` looks for -> what each is."""
    raw = value.encode("utf-8")
    forms: dict[str, str] = {}
    for alt, label in ((None, "base64"), (b"-_", "base64url")):
        for form in _b64_aligned(raw, alt):
            forms.setdefault(form, label)
    forms[raw.hex()] = "hex"
    forms[raw.hex().upper()] = "hex"
    forms[quote_plus(value)] = "URL-encoded"
    forms[quote(value, safe="")] = "URL-encoded"
    forms[json.dumps(value)[1:-1]] = "JSON-escaped"
    forms[value] = "literal"
    return {f: label for f, label in forms.items() if len(f) >= MIN_LEN}


def encodings(value: str) -> set[str]:
    """``value`` and the encoded forms of it `find` looks for."""
    return set(labelled_encodings(value))


class Registry:
    """Known secret values and their forms: session-wide, this test's, and
    retired (planted by an earlier test; still redacted from output)."""

    def __init__(self) -> None:
        self._session: set[str] = set()
        self._test: set[str] = set()
        self._retired: set[str] = set()
        self._index: dict[str, set[str]] | None = None  # every value, retired too
        # `find` answers by text while no value is planted: a run's reports
        # carry the same strings again and again (clause sentence, backend
        # name, capabilities), and planting is what changes an answer.
        self._found: dict[str, int] = {}
        self._current: dict[str, set[str]] | None = None  # session and this test's
        self._labels: dict[str, str] = {}

    # -- planting ---------------------------------------------------------------

    def plant(self, *values: str, session: bool = False) -> None:
        target = self._session if session else self._test
        for v in values:
            if isinstance(v, str) and len(v) >= MIN_LEN and v not in target:
                target.add(v)
                self._current = None
                self._found.clear()
                if self._index is not None:  # grows in place: retiring never shrinks it
                    self._add(self._index, v)

    def plant_host_env(self, environ: Mapping[str, str] = os.environ) -> None:
        """Treat the values of the host's secret-looking env vars as secrets
        for the whole session (paths, sockets and URLs excepted)."""
        for name, value in environ.items():
            if (_SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name)
                    and not value.startswith("/")):
                self.plant(value, session=True)

    def end_test(self) -> None:
        if self._test:
            self._retired |= self._test
            self._test.clear()
            self._current = None
            self._found.clear()  # compressed_spans looks only while values are current

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._session | self._test)

    # -- matching ---------------------------------------------------------------

    def _add(self, index: dict[str, set[str]], value: str) -> None:
        for form, label in labelled_encodings(value).items():
            index.setdefault(form[:WINDOW], set()).add(form)
            self._labels.setdefault(form, label)

    def _forms(self, current: bool = False) -> dict[str, set[str]]:
        if current:
            if self._current is None:
                self._current = {}
                for value in self._session | self._test:
                    self._add(self._current, value)
            return self._current
        if self._index is None:
            self._index = {}
            for value in self._session | self._test | self._retired:
                self._add(self._index, value)
        return self._index

    def _spans(self, text: str, current: bool = False) -> list[tuple[int, int]]:
        """``(start, end)`` of the longest known form at each position that
        starts one, by position."""
        index = self._forms(current)
        if not index or len(text) < MIN_LEN:
            return []
        if len(index) * _FIND_RATIO < len(text):
            # Few forms, long text (a local registry over a plan's JSON):
            # str.find per form (C) beats looking up every window (Python).
            # The same spans: a form of WINDOW or more characters at i is in
            # the bucket of text[i:i + WINDOW]; a shorter one never matches.
            longest: dict[int, int] = {}
            for forms in index.values():
                for form in forms:
                    if len(form) < WINDOW:
                        continue
                    at = text.find(form)
                    while at >= 0:
                        if len(form) > longest.get(at, 0):
                            longest[at] = len(form)
                        at = text.find(form, at + 1)
            return [(at, at + n) for at, n in sorted(longest.items())]
        spans = []
        for i in range(len(text) - WINDOW + 1):
            forms = index.get(text[i:i + WINDOW])
            if forms:
                best = max((f for f in forms if text.startswith(f, i)), key=len, default=None)
                if best is not None:
                    spans.append((i, i + len(best)))
        return spans

    def find_current(self, text: str) -> int:
        """Like `find`, for the session's values and this test's only (not
        those retired from earlier tests): the snapshot refusal, where an
        earlier test's generated value must not refuse an unrelated snapshot."""
        if not isinstance(text, str):
            return 0
        return len(self._spans(text, current=True))

    def kinds(self, text: str) -> list[str]:
        """What each match in ``text`` is (``literal``, ``base64``, ``hex``...)."""
        if not isinstance(text, str):
            return []
        return ([self._labels.get(text[a:b], "?") for a, b in self._spans(text)]
                + [label for _, _, label in compressed_spans(text, self)])

    def find(self, text: str) -> int:
        """How many places in ``text`` hold a known secret (in some form)."""
        if not isinstance(text, str):
            return 0
        found = self._found.get(text)
        if found is None:
            found = len(self._spans(text)) + len(compressed_spans(text, self))
            if len(self._found) >= 4096:
                self._found.clear()
            self._found[text] = found
        return found

    def redact(self, text: str) -> str:
        """``text`` with every known secret, in every form, replaced by `LABEL`."""
        if not isinstance(text, str):
            return text
        spans = sorted(self._spans(text) + [(a, b) for a, b, _ in compressed_spans(text, self)])
        if not spans:
            return text
        out, pos = [], 0
        for start, end in spans:
            if end <= pos:
                continue
            out.append(text[pos:max(start, pos)])
            if start >= pos:
                out.append(LABEL)
            pos = end
        out.append(text[pos:])
        return "".join(out)


# Encoded compressed streams start with these (the encodings of the gzip,
# zlib, bzip2 and xz magic bytes), so only such runs are decoded at all.
_B64_RUN = re.compile(r"(?:H4sI|eJ|eA|eN|eF|eD|QlpoO|/Td6WFo|_Td6WFo)[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX_RUN = re.compile(r"(?:1f8b|789c|7801|78da|785e|425a68|fd377a585a)[0-9a-fA-F]{16,}",
                      re.IGNORECASE)
_MAX_INFLATE = 1 << 20


def _inflate(raw: bytes) -> bytes | None:
    """``raw`` decompressed (gzip, zlib, bzip2 or xz; at most `_MAX_INFLATE`
    bytes), or None when it is none of them."""
    try:
        if raw[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return d.decompress(raw, _MAX_INFLATE)
        if raw[:1] == b"\x78":
            d = zlib.decompressobj()
            return d.decompress(raw, _MAX_INFLATE)
        if raw[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(raw, _MAX_INFLATE)
        if raw[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(raw, _MAX_INFLATE)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    return None


def _decode_run(run: str, kind: str) -> bytes | None:
    try:
        if kind == "hex":
            return binascii.unhexlify(run[: len(run) // 2 * 2])
        text = run.rstrip("=").replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def compressed_spans(text: str, registry: "Registry") -> list[tuple[int, int, str]]:
    """``(start, end, label)`` of every encoded compressed stream in ``text``
    whose decompressed bytes hold a secret ``registry`` knows (in any of its
    forms): ``gzip+base64`` and the like."""
    if not isinstance(text, str) or not registry.values:
        return []
    out = []
    for pattern, kind in ((_B64_RUN, "base64"), (_HEX_RUN, "hex")):
        for m in pattern.finditer(text):
            raw = _decode_run(m.group(0), kind)
            inner = _inflate(raw) if raw else None
            if inner is None:
                continue
            body = inner.decode("utf-8", "replace")
            if registry._spans(body):
                algo = {0x1f: "gzip", 0x78: "zlib", 0x42: "bzip2", 0xfd: "xz"}.get(raw[0], "?")
                out.append((m.start(), m.end(), f"{algo}+{kind}"))
    return out


REGISTRY = Registry()


def plant(*values: str, session: bool = False) -> None:
    """Register secret values the suite put into a test (see module doc)."""
    REGISTRY.plant(*values, session=session)


def plant_all(values: Iterable[str], *, session: bool = False) -> None:
    REGISTRY.plant(*values, session=session)


def find(text: str) -> int:
    return REGISTRY.find(text)


def find_current(text: str) -> int:
    return REGISTRY.find_current(text)


def redact(text: str) -> str:
    return REGISTRY.redact(text)


def refusal(what: str, count: int) -> str:
    """The message of a refused write (names the clause; never the value)."""
    return (f"[SECRET-ARGV] refused: {what} would contain {count} secret value(s) the suite "
            "planted (literal or encoded); it is not written or compared, also not with "
            "--snapshot-update. A backend must never put a token on a command line.")
