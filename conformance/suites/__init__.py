"""The suites this package ships, by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from conformance.framework import Suite
from conformance.suites import crd_server, dtr_payer, fhir_core, member_access, pas_server, payer_apis

SUITES: Mapping[str, Suite] = MappingProxyType(
    {
        suite.name: suite
        for suite in (
            fhir_core.SUITE,
            crd_server.SUITE,
            dtr_payer.SUITE,
            pas_server.SUITE,
            member_access.SUITE,
            payer_apis.SUITE,
        )
    }
)

__all__ = ["SUITES"]
