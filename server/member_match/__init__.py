"""HRex 1.0.0 ``Patient/$member-match``: find a payer's member from another payer's data and record the
member's Consent (the payer-to-payer opt-in).

* ``request.py``: ``parse_member_match`` (400 for malformed input), ``check_consent`` (422 when
  PriorGate cannot comply);
* ``matching.py``: ``match_member``: the deterministic match rule, the stored Consent, the output.

Route: ``server/api/member_match.py``.
"""

from .matching import MemberMatch, match_member
from .request import HREX_IG, MEMBER_MATCH, MemberMatchRequest, check_consent, parse_member_match

__all__ = [
    "HREX_IG",
    "MEMBER_MATCH",
    "MemberMatch",
    "MemberMatchRequest",
    "check_consent",
    "match_member",
    "parse_member_match",
]
