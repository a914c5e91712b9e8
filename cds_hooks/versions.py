"""CRD version negotiation (CRD 2.2 `davinci-crd.version` / `davinci-crd.requestedVersion`)."""

from __future__ import annotations

from enum import StrEnum

from igs.outcome import unprocessable

from .urls import CS_CARD_TYPE_2_0, CS_CDS_HOOKS_CARD_TYPE, CS_COVERAGE_INFORMATION_CODES, CS_CRD_TEMP


class CrdVersion(StrEnum):
    """A supported CRD major.minor version, as advertised in discovery."""

    V2_0 = "2.0"
    V2_2 = "2.2"

    @property
    def coverage_code_system(self) -> str:
        return CS_CRD_TEMP if self is CrdVersion.V2_0 else CS_COVERAGE_INFORMATION_CODES

    @property
    def card_type_system(self) -> str:
        return CS_CARD_TYPE_2_0 if self is CrdVersion.V2_0 else CS_CDS_HOOKS_CARD_TYPE


SUPPORTED_VERSIONS: tuple[CrdVersion, ...] = (CrdVersion.V2_0, CrdVersion.V2_2)
# CRD 2.2 requires `requestedVersion` from clients when a service lists several versions, so a request
# without it comes from a client that predates version negotiation (CRD 2.0.1, e.g. the Inferno kit).
VERSION_WHEN_UNSTATED = CrdVersion.V2_0


def negotiate_version(requested: object) -> CrdVersion:
    """Pick the version named by ``davinci-crd.requestedVersion`` (CRD 2.2 §Version negotiation).

    Absent means a client that predates negotiation (2.0); "2.0.1" or "2.2.1" style values map to
    their major.minor; anything else is an error, as the IG requires for an unsupported version.
    """
    if requested is None:
        return VERSION_WHEN_UNSTATED
    if not isinstance(requested, str):
        raise unprocessable("davinci-crd.requestedVersion must be a string", "extension")
    major_minor = ".".join(requested.strip().split(".")[:2])
    for version in SUPPORTED_VERSIONS:
        if version.value == major_minor:
            return version
    supported = ", ".join(v.value for v in SUPPORTED_VERSIONS)
    raise unprocessable(
        f"CRD version {requested!r} is not supported (supported: {supported})",
        "extension.davinci-crd.requestedVersion",
        code="not-supported",
    )
