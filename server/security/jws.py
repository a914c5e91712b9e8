"""Reading a compact JWS before its signature is checked (RFC 7515 §7.1).

Only to choose the key and reject bad algorithms early; every value read here is re-checked by the
signature verification that follows. Cheaper than PyJWT's unverified decoding, which validates each
base64url character in Python.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


class MalformedJws(ValueError):
    """Not a compact JWS with a JSON object header and payload."""


def _segment(text: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise MalformedJws("not a JWS") from None
    if not isinstance(value, dict):
        raise MalformedJws("not a JWS")
    return value


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified."""
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJws("not a compact JWS")
    return _segment(parts[0]), _segment(parts[1])


def unverified_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJws("not a compact JWS")
    return _segment(parts[0])
