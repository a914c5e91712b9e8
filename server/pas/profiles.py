"""Profile validation of PAS requests against the version's IG package (PAS spec-35: a request that
breaks the profiles is answered with an OperationOutcome), when that package is loaded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from igs import Registry, Validator
from igs.outcome import Failure, OperationOutcomeError

from . import urls
from .versions import PasVersion

PAS_PACKAGE = "hl7.fhir.us.davinci-pas"
PROFILE_OF = {"request": urls.PROFILE_REQUEST_BUNDLE, "inquiry": urls.PROFILE_INQUIRY_REQUEST_BUNDLE}
log = logging.getLogger("priorgate.pas")

ProfileGate = Callable[[Mapping[str, Any], PasVersion, str], None]


def profile_gate(registry: Registry, validator: Validator) -> ProfileGate:
    """``gate(bundle, version, kind)`` raising 422 with the validator's errors; a version whose package is
    not loaded is served unvalidated, with one warning."""
    warned: set[PasVersion] = set()

    def gate(bundle: Mapping[str, Any], version: PasVersion, kind: str) -> None:
        package = registry.find(PAS_PACKAGE, version.value)
        if package is None:
            if version not in warned:
                warned.add(version)
                log.warning(
                    "IG package %s#%s is not loaded: PAS requests are not profile-validated",
                    PAS_PACKAGE,
                    version.value,
                )
            return
        issues = validator.validate(dict(bundle), PROFILE_OF[kind], package=package)
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            raise OperationOutcomeError(Failure.UNPROCESSABLE, tuple(errors))

    return gate
