"""Guest output made safe for the operator's terminal (issue 16).

`bottle-ref exec NAME -- CMD` prints what the guest wrote. A hostile guest
can write terminal control sequences: OSC 52 sets the operator's clipboard,
OSC 0/2 the window title, DCS/APC/PM strings talk to the terminal itself,
CSI moves the cursor and rewrites lines already on screen (hiding output),
and some terminals answer queries by typing into the operator's shell.
`strip_controls` removes every escape sequence (7-bit ESC-introduced and
their 8-bit C1 forms), every other C0/C1 control but tab and newline, and
DEL; a CRLF becomes a newline. Printable text, Unicode included, is kept.

Only interactive use (``exec --agent`` on a terminal: the agent owns it, as
``docker exec -it`` would) passes output through untouched.
"""

from __future__ import annotations

import re

# ESC-introduced strings: OSC (]), DCS (P), SOS (X), PM (^), APC (_), ended by
# BEL or ST (ESC \ or 0x9c); an unterminated one runs to the end of the text.
_STRING = re.compile(r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|$)")
# CSI: ESC [ or 0x9b, parameter bytes, intermediate bytes, one final byte.
_CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?")
# Any other escape: ESC, intermediates, one final byte (e.g. ESC c: reset).
_ESC = re.compile(r"\x1b[ -/]*[0-~]?")
# What is left of the controls: C0 but tab and newline, DEL, C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences or control characters
    (tab and newline kept; CRLF becomes a newline)."""
    text = text.replace("\r\n", "\n")
    text = _STRING.sub("", text)
    text = _CSI.sub("", text)
    text = _ESC.sub("", text)
    return _CONTROL.sub("", text)
