"""The port to a legacy payer's X12 278 system, and its two implementations.

``X12Gateway.exchange(request_278, timeout)`` sends one 278 request interchange and returns the 278
response interchange text. :class:`HttpX12Gateway` POSTs it to the payer's endpoint (``application/EDI-X12``,
an injected ``httpx.Client``); :class:`SimulatedX12Payer` answers in process with ``x12``'s simulated UMO
(approvals, denials, pends, modifications and AAA rejections; see ``x12/payer.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

from x12 import simulate_payer_response
from x12.payer import Decide

EDI_X12 = "application/EDI-X12"


class X12GatewayError(Exception):
    """The payer could not be reached or answered with something other than a 278 (message says what)."""


class X12Gateway(Protocol):
    def exchange(self, request_278: str, *, timeout: float) -> str:
        """Send a 278 request interchange; the payer's 278 response interchange. Raises
        :class:`X12GatewayError` (or ``TimeoutError`` when ``timeout`` seconds pass without an answer)."""
        ...


@dataclass(frozen=True)
class HttpX12Gateway:
    """A payer's 278 endpoint over HTTP(S): the request as the body, the response as the answer."""

    client: httpx.Client
    endpoint: str

    def exchange(self, request_278: str, *, timeout: float) -> str:
        try:
            answer = self.client.post(
                self.endpoint,
                content=request_278.encode("utf-8"),
                headers={"Content-Type": EDI_X12, "Accept": EDI_X12},
                timeout=timeout,
            )
        except httpx.TimeoutException:
            raise TimeoutError(f"{self.endpoint} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise X12GatewayError(f"{self.endpoint}: {type(exc).__name__}: {exc}") from None
        if answer.status_code >= 400:
            raise X12GatewayError(f"{self.endpoint} answered HTTP {answer.status_code}")
        text = answer.text
        if not text.lstrip().startswith("ISA"):
            raise X12GatewayError(f"{self.endpoint} answered something that is not an X12 interchange")
        return text


@dataclass(frozen=True)
class SimulatedX12Payer:
    """The built-in simulated legacy payer (demo and tests): answers at once, in process."""

    now: Callable[[], datetime]
    decide: Decide | None = None

    def exchange(self, request_278: str, *, timeout: float) -> str:
        return simulate_payer_response(request_278, now=self.now(), decide=self.decide)
