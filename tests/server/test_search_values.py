"""Index value extraction: date ranges, normalisation, tokens, references, FHIRPath expressions."""

from __future__ import annotations

import pytest

from server.search.definitions import load_registry
from server.search.extract import Extractor, compile_expression
from server.search.query import split_values
from server.search.values import (
    DateRange,
    ReferenceValue,
    TokenValue,
    normalize,
    parse_date_range,
    parse_reference,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", DateRange("2024-01-01T00:00:00.000000", "2024-12-31T23:59:59.999999")),
        ("2024-02", DateRange("2024-02-01T00:00:00.000000", "2024-02-29T23:59:59.999999")),
        ("2024-12", DateRange("2024-12-01T00:00:00.000000", "2024-12-31T23:59:59.999999")),
        ("2024-03-05", DateRange("2024-03-05T00:00:00.000000", "2024-03-05T23:59:59.999999")),
        ("2024-03-05T10:00:00+02:00", DateRange("2024-03-05T08:00:00.000000", "2024-03-05T08:00:00.999999")),
        ("2024-03-05T10:00:00.25Z", DateRange("2024-03-05T10:00:00.250000", "2024-03-05T10:00:00.259999")),
    ],
)
def test_date_ranges(text: str, expected: DateRange) -> None:
    assert parse_date_range(text) == expected


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", "2024-02-30", ""])
def test_bad_dates(text: str) -> None:
    assert parse_date_range(text) is None


def test_normalize_and_split() -> None:
    assert normalize("Zoë ÅNGSTRÖM") == "zoe angstrom"
    assert split_values(r"a,b\,c,d\\") == ("a", "b,c", "d\\")


def test_references() -> None:
    assert parse_reference("Patient/1") == ReferenceValue("Patient", "1", None)
    assert parse_reference("Patient/1/_history/2") == ReferenceValue("Patient", "1", None)
    absolute = "https://ehr.example.org/fhir/Patient/9"
    assert parse_reference(absolute) == ReferenceValue("Patient", "9", absolute)
    assert parse_reference("urn:uuid:1234") == ReferenceValue(None, None, "urn:uuid:1234")


def test_extractor_covers_paths_casts_and_fhirpath() -> None:
    extractor = Extractor(load_registry())
    rows = extractor.rows(
        "Patient",
        {
            "resourceType": "Patient",
            "telecom": [{"system": "email", "value": "a@b.org"}, {"system": "phone", "value": "555"}],
            "deceasedDateTime": "2020-01-01",
            "name": [{"family": "Ng", "given": ["Lan"]}],
        },
    )
    assert ("email", TokenValue("email", "a@b.org")) in rows.tokens
    assert ("phone", TokenValue("phone", "555")) in rows.tokens
    assert ("email", TokenValue("phone", "555")) not in rows.tokens
    assert any(code == "death-date" for code, _ in rows.dates)
    assert ("given", "Lan") in rows.strings
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Group/1"},
        "effectivePeriod": {"start": "2020"},
    }
    rows = extractor.rows("Observation", observation)
    codes = {code for code, _ in rows.references}
    assert "subject" in codes and "patient" not in codes  # patient narrows subject to Patient targets
    assert [rng.high for code, rng in rows.dates if code == "date"] == ["9999-12-31T23:59:59.999999"]


@pytest.mark.parametrize("extension", [None, 5, True, "x", {"url": "u"}])
def test_extractor_ignores_an_extension_that_is_not_an_array(extension: object) -> None:
    # Regression: `"extension": null` made the extension() step iterate None (a 500 on create).
    rows = Extractor(load_registry()).rows(
        "Patient", {"resourceType": "Patient", "extension": extension, "name": [{"family": "Ng"}]}
    )
    assert ("family", "Ng") in rows.strings


def test_compiled_expression_unions() -> None:
    evaluate = compile_expression("Claim.patient | Claim.provider")
    found = evaluate(
        {
            "resourceType": "Claim",
            "patient": {"reference": "Patient/1"},
            "provider": {"reference": "Organization/2"},
        }
    )
    assert len(found) == 2
