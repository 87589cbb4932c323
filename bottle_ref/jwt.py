"""Just enough JWT to read claims and to mint unsigned placeholders.

Nothing here verifies a signature: the bottle only *reads* claims of tokens
the host already trusts (to copy their ``exp``), and mints placeholders that
no server will ever accept. Stdlib only, so the bundle image can use it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

# Placeholders declare themselves unsigned; the third segment is a fixed,
# non-secret marker (base64url alphabet) so parsers that want 3 parts get 3.
PLACEHOLDER_HEADER: Mapping[str, str] = {"alg": "none", "typ": "JWT"}
PLACEHOLDER_SIGNATURE = "bottle-placeholder-unsigned"

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class JWTError(ValueError):
    """Not a JWT we can read. The message never contains the token."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2; what Codex decodes)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Strict base64url decode; tolerates missing or present padding."""
    body = segment.rstrip("=")
    if not _B64URL.match(body) or len(body) % 4 == 1:
        raise JWTError("segment is not base64url")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - guarded above
        raise JWTError("segment is not base64url") from exc


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (JWTError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JWTError(f"{what} is not base64url-encoded JSON") from exc
    if not isinstance(value, dict):
        raise JWTError(f"{what} is not a JSON object")
    return value


def split(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str):
        raise JWTError("token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError(f"token has {len(parts)} dot-separated parts, a JWT has 3")
    return parts[0], parts[1], parts[2]


def decode_header(token: str) -> dict[str, Any]:
    return _segment_json(split(token)[0], "header")


def decode_payload(token: str) -> dict[str, Any]:
    """The claims of a 3-part JWT (unverified)."""
    return _segment_json(split(token)[1], "payload")


def exp_of(claims: Mapping[str, Any]) -> int | None:
    """The ``exp`` claim as an int (NumericDate may be fractional: floor it);
    None when absent. A non-numeric ``exp`` is an error, not a silent None."""
    if "exp" not in claims or claims["exp"] is None:
        return None
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise JWTError("exp claim is not a number")
    if isinstance(exp, float):
        if exp != exp or exp in (float("inf"), float("-inf")):
            raise JWTError("exp claim is not a finite number")
        return int(exp // 1)
    return exp


def encode_unsigned(claims: Mapping[str, Any], *, signature: str = PLACEHOLDER_SIGNATURE) -> str:
    """A deterministic ``header.payload.signature`` with alg none.

    Keys are sorted and separators compact so equal claims give an equal
    token (prepare is deterministic)."""

    def seg(obj: Mapping[str, Any]) -> str:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return b64url_encode(text.encode("utf-8"))

    return f"{seg(PLACEHOLDER_HEADER)}.{seg(claims)}.{signature}"
