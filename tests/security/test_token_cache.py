"""CachingVerifier: one signature check per token until it expires; failures are never remembered."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from server.security import InvalidTokenError, Principal
from server.security.tokens import CachingVerifier

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _token(exp: datetime, marker: str = "a") -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(exp.timestamp()), "m": marker}).encode())
    return "e30." + payload.rstrip(b"=").decode() + ".sig"


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.refuse = False

    async def verify(self, token: str) -> Principal:
        self.calls += 1
        if self.refuse:
            raise InvalidTokenError("refused")
        return Principal(client_id="c", tenants=frozenset({"t"}), scopes=())


def test_a_token_is_verified_once_until_it_expires() -> None:
    now = [START]
    inner = Counting()
    cache = CachingVerifier(inner, lambda: now[0])
    token = _token(START + timedelta(minutes=5))
    for _ in range(5):
        assert asyncio.run(cache.verify(token)).client_id == "c"
    assert inner.calls == 1
    now[0] = START + timedelta(minutes=6)
    inner.refuse = True  # the real verifier refuses it as expired
    with pytest.raises(InvalidTokenError):
        asyncio.run(cache.verify(token))
    assert inner.calls == 2


def test_refusals_are_not_cached_and_the_cache_is_bounded() -> None:
    inner = Counting()
    inner.refuse = True
    cache = CachingVerifier(inner, lambda: START, max_entries=2)
    token = _token(START + timedelta(minutes=5))
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            asyncio.run(cache.verify(token))
    assert inner.calls == 2
    inner.refuse = False
    for marker in "xyz":
        asyncio.run(cache.verify(_token(START + timedelta(minutes=5), marker)))
    assert len(cache._seen) == 2
