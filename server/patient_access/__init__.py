"""Patient Access (CMS-0057-F) for prior authorizations: PDex 2.0.0 prior-authorization
ExplanationOfBenefits built from PriorGate's PAS data and stored when a result is recorded.

| Module | Concept |
|---|---|
| ``urls.py`` | PDex / PAS canonicals, drug code systems, PriorGate's member identifier system |
| ``eob.py`` | ``build_prior_auth_eob``: request + decision + ClaimResponse -> ExplanationOfBenefit (pure) |
| ``members.py`` | ``find_member``: the stored member Patient a PAS request names by member identifier |
| ``publisher.py`` | ``EobPublisher``: the ``PasService.published`` hook storing the current EOB |

Routes: ``server/api/patient_access.py``; who may read what: ``server/security/patient_context.py``.
"""

from .eob import build_prior_auth_eob, is_drug_item
from .publisher import EobPublisher
from .urls import MEMBER_SYSTEM, PROFILE_PRIOR_AUTHORIZATION

__all__ = [
    "MEMBER_SYSTEM",
    "PROFILE_PRIOR_AUTHORIZATION",
    "EobPublisher",
    "build_prior_auth_eob",
    "is_drug_item",
]
