"""One PAS exchange through X12: Bundle -> 278 -> (simulated) payer -> 278 -> PAS response Bundle.

For the demo and for PAS use cases routed to the simulated X12 payer; every X12 leg is returned too, so
callers can log or show what went over the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from x12.envelope import ControlNumbers
from x12.inquiry import inquiry_bundle_to_278_request
from x12.payer import Decide, simulate_payer_response
from x12.request import bundle_to_278_request
from x12.response import inquiry_response_278_to_bundle, response_278_to_bundle


@dataclass(frozen=True)
class Exchange:
    request_278: str
    response_278: str
    response_bundle: dict[str, Any]


def exchange_with_simulated_payer(
    bundle: dict[str, Any],
    *,
    now: datetime,
    control: ControlNumbers,
    decide: Decide | None = None,
    pas_version: str = "2.2.1",
    inquiry: bool = False,
) -> Exchange:
    """Run a PAS request (or, with ``inquiry=True``, a Claim Inquiry) through the simulated X12 payer."""
    to_278 = inquiry_bundle_to_278_request if inquiry else bundle_to_278_request
    request_278 = to_278(bundle, control=control, now=now)
    response_278 = simulate_payer_response(request_278, now=now, decide=decide)
    back = inquiry_response_278_to_bundle if inquiry else response_278_to_bundle
    return Exchange(request_278, response_278, back(response_278, bundle, now=now, pas_version=pas_version))
