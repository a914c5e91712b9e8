from __future__ import annotations

import copy

import pytest

from igs.outcome import Issue
from igs.registry import Registry
from igs.suppressions import apply_suppressions, load_suppressions
from igs.validator import Finding, Validator

AUTH_NUMBER = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-authorizationNumber"


def test_every_suppression_has_a_reason_and_compiles() -> None:
    suppressions = load_suppressions()
    assert suppressions
    assert all(s.reason and "\n" not in s.reason for s in suppressions)


def test_suppression_needs_profile_path_and_message_to_match() -> None:
    rule = load_suppressions(
        '[[suppression]]\nprofile = "http://x/*|2.*"\npath = "^Claim\\\\.item"\n'
        'message = "bad"\nreason = "r"\n'
    )
    hit = Finding(Issue("a bad thing", expression=("Claim.item[0]",)), "http://x/sd|2.1")
    other_profile = Finding(Issue("a bad thing", expression=("Claim.item[0]",)), "http://x/sd|3.0")
    other_path = Finding(Issue("a bad thing", expression=("Claim.status",)), "http://x/sd|2.1")
    assert apply_suppressions([hit, other_profile, other_path], rule) == [other_profile, other_path]


@pytest.mark.igs
def test_pas_221_context_defect_is_suppressed(registry: Registry) -> None:
    package = registry.find("hl7.fhir.us.davinci-pas", "2.2.1")
    assert package is not None
    claim = dict(package.examples())["example/Claim-ReferralAuthorizationExample.json"]
    # The profile slices Claim.extension:authorizationNumber, but the extension's context omits Claim.
    claim.setdefault("extension", []).append({"url": AUTH_NUMBER, "valueString": "AUTH0001"})
    strict = Validator(registry, suppressions=(), package=package)
    lenient = Validator(registry, package=package)

    def context_issues(v: Validator) -> list[Issue]:
        return [i for i in v.validate(copy.deepcopy(claim)) if "not allowed to be used at" in i.diagnostics]

    assert [i.expression for i in context_issues(strict)] == [
        (f"Claim.extension[{len(claim['extension']) - 1}]",)
    ]
    assert context_issues(lenient) == []
