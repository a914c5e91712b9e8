"""The PAS versions PriorGate serves, each on its own endpoint (PAS conf-1), as data rather than forks.

Spec: PAS 2.2.1 "Version differences" (changelog), section 1.2 of the requirements digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from . import urls

PayloadContent = Literal["id-only", "full-resource"]
InquireOutput = Literal["bundle", "parameters"]


class PasVersion(StrEnum):
    V2_0_1 = "2.0.1"
    V2_2_1 = "2.2.1"

    @property
    def rules(self) -> VersionRules:
        return _RULES[self]

    def profile(self, canonical: str) -> str:
        """A versioned canonical (``url|version``) for meta.profile."""
        return f"{canonical}|{self.value}"


@dataclass(frozen=True)
class VersionRules:
    """What differs between the versions, as looked up by the builders."""

    # ClaimResponse.outcome when some items are still pended (A4). 2.2 restricts outcome to
    # complete | partial | error (FHIR-51436); 2.0.1 clients and the 2.0.1 test kit expect queued.
    outcome_all_pended: str
    outcome_some_pended: str
    response_bundle_identifier_required: bool  # FHIR-51397
    claim_response_request_required: bool  # FHIR-49021
    has_reviewer_extension: bool  # extension-claimResponseReviewer is new in 2.2
    has_transmission_identifiers: bool
    inquire_output: InquireOutput  # FHIR-55394
    inquiry_empty_is_not_found: bool  # 2.0.1 Bundle needs 1..* entries, so no match is a 404
    payload_content: PayloadContent  # spec-62 (2.2) vs the 2.0.1 id-only SHALL
    update_links_prior_claim: bool  # PASClaimUpdate.related 1..1 with the prior Claim in the Bundle
    add_item_extensions: bool  # item trace number, pre-auth dates and numbers allowed on addItem (2.2)
    error_element_parts: bool  # 2.2 errorElement has error + processNote parts; 2.0.1 is a plain string
    line_number_on_payload: bool  # 2.0.1 serviceLineNumber sits on CommunicationRequest.payload
    task_line_number_extension: str  # Task.input line number: 2.0.1 paLineNumber, 2.2 serviceLineNumber
    task_questionnaire_input: str  # 2.0.1 questionnaires-needed (Identifier), 2.2 questionnaire-context


_RULES: Mapping[PasVersion, VersionRules] = MappingProxyType(
    {
        PasVersion.V2_0_1: VersionRules(
            outcome_all_pended="queued",
            outcome_some_pended="queued",
            response_bundle_identifier_required=False,
            claim_response_request_required=False,
            has_reviewer_extension=False,
            has_transmission_identifiers=False,
            inquire_output="bundle",
            inquiry_empty_is_not_found=True,
            payload_content="id-only",
            update_links_prior_claim=False,
            add_item_extensions=False,
            error_element_parts=False,
            line_number_on_payload=True,
            task_line_number_extension=urls.EXT_PA_LINE_NUMBER,
            task_questionnaire_input="questionnaires-needed",
        ),
        PasVersion.V2_2_1: VersionRules(
            outcome_all_pended="complete",
            outcome_some_pended="partial",
            response_bundle_identifier_required=True,
            claim_response_request_required=True,
            has_reviewer_extension=True,
            has_transmission_identifiers=True,
            inquire_output="parameters",
            inquiry_empty_is_not_found=False,
            payload_content="full-resource",
            update_links_prior_claim=True,
            add_item_extensions=True,
            error_element_parts=True,
            line_number_on_payload=False,
            task_line_number_extension=urls.EXT_SERVICE_LINE_NUMBER,
            task_questionnaire_input="questionnaire-context",
        ),
    }
)
