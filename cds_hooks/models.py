"""Pydantic models for untrusted CDS Hooks JSON (CDS Hooks 2.0 §Calling a CDS Service, §Feedback).

Unknown members are kept and ignored (CRD hook-23, found-33); FHIR resources inside stay plain JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FhirAuthorization(BaseModel):
    """CDS Hooks §fhirAuthorization: the bearer token for the client's FHIR server."""

    model_config = ConfigDict(extra="allow", frozen=True)

    access_token: Annotated[str, Field(min_length=1)]
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class HookRequest(BaseModel):
    """The body POSTed to ``{baseUrl}/cds-services/{id}``."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    hook: Annotated[str, Field(min_length=1)]
    hook_instance: Annotated[str, Field(alias="hookInstance", min_length=1)]
    fhir_server: Annotated[str | None, Field(alias="fhirServer", pattern=r"^https?://")] = None
    fhir_authorization: Annotated[FhirAuthorization | None, Field(alias="fhirAuthorization")] = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    reason: dict[str, Any] | None = None
    user_comment: Annotated[str | None, Field(alias="userComment")] = None


class AcceptedSuggestion(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: Annotated[str, Field(min_length=1)]


class FeedbackItem(BaseModel):
    """One card outcome (CDS Hooks §Feedback)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    card: Annotated[str, Field(min_length=1)]
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: Annotated[list[AcceptedSuggestion], Field(alias="acceptedSuggestions")] = []
    override_reason: Annotated[OverrideReason | None, Field(alias="overrideReason")] = None
    outcome_timestamp: Annotated[str, Field(alias="outcomeTimestamp", min_length=10)]


class Feedback(BaseModel):
    """The body POSTed to ``{baseUrl}/cds-services/{id}/feedback`` (CDS Hooks 2.0 §Feedback)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    feedback: Annotated[list[FeedbackItem], Field(min_length=1)]
