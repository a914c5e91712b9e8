"""SMART scope grammar (v2 with v1 compatibility) and the route checks built on it."""

from __future__ import annotations

import pytest

from server.security.scopes import (
    ScopeSyntaxError,
    narrow,
    operation_allowed,
    operation_requirement,
    parse_scope,
    parse_scopes,
    scope_allows,
)


@pytest.mark.parametrize(
    ("text", "context", "resource_type", "letters", "version"),
    [
        ("system/Claim.c", "system", "Claim", "c", 2),
        ("system/*.rs", "system", "*", "rs", 2),
        ("system/Claim.cruds", "system", "Claim", "cruds", 2),
        ("user/Patient.r", "user", "Patient", "r", 2),
        ("patient/Observation.rs", "patient", "Observation", "rs", 2),
        ("system/*.read", "system", "*", "rs", 1),
        ("system/Claim.write", "system", "Claim", "cud", 1),
        ("system/*.*", "system", "*", "cruds", 1),
    ],
)
def test_scope_grammar(text, context, resource_type, letters, version):
    scope = parse_scope(text)
    assert scope is not None
    assert scope.context == context
    assert scope.resource_type == resource_type
    assert scope.interactions == frozenset(letters)
    assert scope.version == version
    assert not scope.restricted


@pytest.mark.parametrize(
    "text",
    [
        "system/Claim.sr",  # letters out of order
        "system/Claim.cc",  # repeated letter
        "system/Claim.",  # no permission
        "system/Claim.x",
        "admin/Claim.r",  # unknown context
        "system/claim.r",  # resource types are capitalised
        "system/Claim.read?status=active",  # v1 has no restrictions
        "system/Claim.rs?",  # empty restriction
        "Claim.r",
    ],
)
def test_malformed_scopes_raise(text):
    with pytest.raises(ScopeSyntaxError):
        parse_scope(text)


def test_non_resource_scopes_are_recognised():
    parsed = parse_scopes("openid fhirUser launch/patient system/Claim.c")
    assert parsed.other == ("openid", "fhirUser", "launch/patient")
    assert [s.text for s in parsed.resource_scopes] == ["system/Claim.c"]


def test_restricted_scope_is_recognised_but_grants_nothing():
    scope = parse_scope(
        "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|lab"
    )
    assert scope is not None and scope.restricted
    assert scope.restrictions[0][0] == "category"
    assert not scope_allows([scope], "Observation", "r")


@pytest.mark.parametrize(
    ("scopes", "resource_type", "interaction", "allowed"),
    [
        ("system/Claim.c", "Claim", "c", True),
        ("system/Claim.c", "Claim", "r", False),
        ("system/Claim.c", "ClaimResponse", "c", False),
        ("system/*.rs", "ClaimResponse", "s", True),
        ("system/*.rs", "ClaimResponse", "u", False),
        ("system/*.read", "Patient", "r", True),
        ("system/*.read", "Patient", "s", True),
        ("system/*.read", "Patient", "c", False),
        ("system/*.write", "Patient", "d", True),
        ("system/*.write", "Patient", "r", False),
        ("system/*.*", "Bundle", "u", True),
        ("system/Claim.r system/Claim.s", "Claim", "s", True),
    ],
)
def test_scope_allows(scopes, resource_type, interaction, allowed):
    assert scope_allows(parse_scopes(scopes).resource_scopes, resource_type, interaction) is allowed


@pytest.mark.parametrize(
    ("scopes", "operation", "resource_type", "allowed"),
    [
        ("system/Claim.c", "$submit", None, True),
        ("system/Claim.rs", "$submit", None, False),
        ("system/Claim.s", "$inquire", None, True),
        ("system/Claim.r", "$inquire", None, True),
        ("system/Claim.c", "$inquire", None, False),
        ("system/Questionnaire.r", "$questionnaire-package", None, True),
        ("system/Claim.cruds", "$questionnaire-package", None, False),
        ("system/Patient.r", "$validate", "Patient", True),
        ("system/Patient.r", "$unknown-system-op", None, False),
        ("system/*.r", "$unknown-system-op", None, True),
    ],
)
def test_operation_scopes(scopes, operation, resource_type, allowed):
    assert operation_allowed(parse_scopes(scopes).resource_scopes, operation, resource_type) is allowed


def test_operation_requirement_accepts_names_without_dollar():
    assert operation_requirement("submit").resource_type == "Claim"
    assert operation_requirement("submit").any_of == frozenset("c")


def test_narrow_grants_only_covered_scopes():
    allowed = parse_scopes("system/*.rs system/Claim.c")
    requested = parse_scopes("system/Claim.crs system/Patient.r system/Patient.c user/Claim.r system/*.r")
    granted = narrow(requested, allowed)
    assert [s.text for s in granted.resource_scopes] == ["system/Claim.crs", "system/Patient.r", "system/*.r"]


def test_narrow_does_not_let_a_typed_scope_buy_a_wildcard():
    granted = narrow(parse_scopes("system/*.c"), parse_scopes("system/Claim.c"))
    assert granted.resource_scopes == ()


def test_to_v2_normalises_v1():
    scope = parse_scope("system/*.read")
    assert scope is not None
    assert scope.to_v2() == "system/*.rs"


@pytest.mark.parametrize(
    ("interaction", "letter"),
    [
        ("read", "r"),
        ("vread", "r"),
        ("history-instance", "r"),
        ("patch", "u"),
        ("search-type", "s"),
        ("create", "c"),
    ],
)
def test_restful_interactions_map_to_letters(interaction, letter):
    from server.security.scopes import interaction_letter

    assert interaction_letter(interaction) == letter
