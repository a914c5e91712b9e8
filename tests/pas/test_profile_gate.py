"""The PAS profile gate: 422 with the validator's errors when the version's package is loaded, a single
warning and no validation when it is not (a fresh machine has no IG packages)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from conformance.suites import pas_server
from igs import Validator, load_registry
from igs.outcome import Failure, OperationOutcomeError
from server.pas import PasVersion
from server.pas.profiles import profile_gate


def test_without_the_package_requests_pass_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = load_registry(tmp_path)
    gate = profile_gate(registry, Validator(registry))
    broken = pas_server.request_bundle("G1")
    broken["entry"][0]["resource"]["use"] = "claim"
    with caplog.at_level(logging.WARNING, logger="priorgate.pas"):
        gate(broken, PasVersion.V2_2_1, "request")
        gate(broken, PasVersion.V2_2_1, "request")
    assert [r.getMessage() for r in caplog.records if "not profile-validated" in r.getMessage()] == [
        "IG package hl7.fhir.us.davinci-pas#2.2.1 is not loaded: PAS requests are not profile-validated"
    ]


@pytest.mark.parametrize("version", list(PasVersion))
def test_with_the_package_a_profile_error_is_422(version: PasVersion) -> None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    registry = load_registry(Path(raw))
    gate = profile_gate(registry, Validator(registry))
    gate(pas_server.request_bundle("G2"), version, "request")  # conforming: no error
    broken = pas_server.request_bundle("G3")
    broken["entry"][0]["resource"]["use"] = "claim"
    with pytest.raises(OperationOutcomeError) as raised:
        gate(broken, version, "request")
    assert raised.value.failure is Failure.UNPROCESSABLE
    assert any("use" in (i.diagnostics + " ".join(i.expression)) for i in raised.value.issues)
