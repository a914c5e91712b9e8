"""X12 278 bridge: 005010X217 request/response and 005010X215 inquiry, mapped to and from PAS FHIR Bundles.

Pure functions, no I/O. Malformed input raises :class:`X12Error` (an ``igs.outcome.OperationOutcomeError``
with ``Failure.INVALID``) naming the segment position, segment id and element. See x12/README.md.
"""

from x12.acks import (
    Acknowledgement,
    Ta1,
    check_interchange,
    generate_999,
    generate_ta1,
    read_acknowledgement,
)
from x12.codec import Delimiters, Segment, tokenize, write_segments
from x12.envelope import (
    ControlNumbers,
    FunctionalGroup,
    Interchange,
    Party,
    Transaction,
    build_interchange,
    parse_interchange,
    serialize,
)
from x12.errors import X12Error
from x12.exchange import Exchange, exchange_with_simulated_payer
from x12.inquiry import inquiry_authorization, inquiry_bundle_to_278_request
from x12.loops import Loop, Transaction278, parse_loops
from x12.model import X215, X217, Authorization
from x12.payer import Decision, default_decision, simulate_payer_response
from x12.request import authorization_from_bundle, bundle_to_278_request
from x12.response import inquiry_response_278_to_bundle, read_response, response_278_to_bundle
from x12.validate import validate_278
from x12.x217 import read_authorization, to_segments

__all__ = [
    "X215",
    "X217",
    "Acknowledgement",
    "Authorization",
    "ControlNumbers",
    "Decision",
    "Delimiters",
    "Exchange",
    "FunctionalGroup",
    "Interchange",
    "Loop",
    "Party",
    "Segment",
    "Ta1",
    "Transaction",
    "Transaction278",
    "X12Error",
    "authorization_from_bundle",
    "build_interchange",
    "bundle_to_278_request",
    "check_interchange",
    "default_decision",
    "exchange_with_simulated_payer",
    "generate_999",
    "generate_ta1",
    "inquiry_authorization",
    "inquiry_bundle_to_278_request",
    "inquiry_response_278_to_bundle",
    "parse_interchange",
    "parse_loops",
    "read_acknowledgement",
    "read_authorization",
    "read_response",
    "response_278_to_bundle",
    "serialize",
    "simulate_payer_response",
    "to_segments",
    "tokenize",
    "validate_278",
    "write_segments",
]
