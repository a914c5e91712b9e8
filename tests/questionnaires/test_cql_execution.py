"""Every topic Library's ELM runs in cql-execution against synthetic EHR data and prepopulates the
answers the Questionnaire expects (the engine the DTR reference SMART app uses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from questionnaires import Catalog

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
EXECUTION_TIME = "2026-11-25T10:00:00.000Z"
ACTIVE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
}

Results = dict[str, dict[str, Any]]


def patient_bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1958-04-02"}
    entries = [patient, *resources]
    for index, resource in enumerate(entries[1:]):
        resource.setdefault("id", f"r{index}")
        resource.setdefault("subject", {"reference": "Patient/p1"})
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in entries]}


def condition(system: str, code: str, onset: str | None = None, status: str = "active") -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{**ACTIVE["coding"][0], "code": status}]},
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if onset:
        out["onsetDateTime"] = onset
    return out


def observation(
    code: str, when: str, value: float | None = None, unit: str = "", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
    }
    if value is not None:
        out["valueQuantity"] = {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    out.update(extra)
    return out


def procedure(code: str, when: str, status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": status,
        "code": {"coding": [{"system": CPT, "code": code}]},
        "performedDateTime": when,
    }


CASES: list[dict[str, Any]] = [
    {
        "id": "lumbar-conservative",
        "library": "LumbarSpineMRIPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "M54.16", "2026-08-01T00:00:00Z"),
            condition(ICD, "M21.371", "2026-10-01T00:00:00Z"),
            procedure("97161", "2026-08-20T00:00:00Z"),
            procedure("97110", "2026-09-10T00:00:00Z"),
            procedure("97110", "2026-10-15T00:00:00Z"),
            procedure("97140", "2026-11-01T00:00:00Z", status="not-done"),
        ),
    },
    {
        "id": "lumbar-red-flag",
        "library": "LumbarSpineMRIPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "M54.50", "2026-11-20T00:00:00Z"),
            condition(ICD, "G83.4", "2026-11-22T00:00:00Z"),
            condition(ICD, "C79.51", "2020-01-01T00:00:00Z", status="resolved"),
        ),
    },
    {
        "id": "cpap-mild-with-comorbidity",
        "library": "CPAPPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "G47.33"),
            condition(ICD, "I10"),
            observation("69990-0", "2026-06-01T22:00:00Z", 22, "/h"),
            observation("69990-0", "2026-10-03T22:00:00Z", 11.5, "/h"),
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "period": {"start": "2026-09-15T09:00:00Z"},
            },
            {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {"code": "AMB"},
                "period": {"start": "2026-12-15T09:00:00Z"},
            },
        ),
    },
    {
        "id": "cpap-untested",
        "library": "CPAPPrepopulation",
        "bundle": patient_bundle(condition(ICD, "I10")),
    },
    {
        "id": "home-oxygen-qualifying",
        "library": "HomeOxygenPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "J44.9"),
            observation("59408-5", "2026-11-01T08:00:00Z", 91, "%"),
            observation("59408-5", "2026-11-18T08:00:00Z", 86, "%"),
            observation("2703-7", "2026-11-18T08:30:00Z", 52, "mm[Hg]"),
        ),
    },
    {
        "id": "home-oxygen-normal",
        "library": "HomeOxygenPrepopulation",
        "bundle": patient_bundle(observation("59408-5", "2026-11-18T08:00:00Z", 95, "%")),
    },
    {
        "id": "biologic-crohns",
        "library": "BiologicInfusionPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "K50.90"),
            {
                "resourceType": "MedicationRequest",
                "status": "stopped",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": "1256", "display": "azathioprine"}],
                    "text": "Azathioprine 50 MG Oral Tablet",
                },
            },
            observation(
                "71773-6",
                "2026-10-20T00:00:00Z",
                valueCodeableConcept={
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}
                    ]
                },
            ),
            observation("29463-7", "2026-11-20T00:00:00Z", 72.5, "kg"),
        ),
    },
    {
        "id": "ct-abdomen",
        "library": "CTAbdomenPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "R10.31"),
            observation("62238-1", "2026-11-10T00:00:00Z", 24, "mL/min/{1.73_m2}"),
        ),
    },
    {
        "id": "knee",
        "library": "TotalKneeArthroplastyPrepopulation",
        "bundle": patient_bundle(
            condition(ICD, "M17.11"),
            procedure("97161", "2026-03-01T00:00:00Z"),
            procedure("20610", "2026-08-01T00:00:00Z"),
            observation("39156-5", "2026-11-01T00:00:00Z", 31.2, "kg/m2"),
        ),
    },
]


@pytest.fixture(scope="module")
def results(run_cql: Callable[[list[dict[str, Any]]], Results]) -> Results:
    return run_cql([{**case, "executionDateTime": EXECUTION_TIME} for case in CASES])


def test_every_topic_library_is_executed(catalog: Catalog) -> None:
    topic_libraries = {lib["name"] for lib in catalog.libraries.values()} - {"FHIRHelpers", "DTRHelpers"}
    assert topic_libraries == {case["library"] for case in CASES}


def test_lumbar_mri_prepopulates_duration_and_therapy(results: Results) -> None:
    row = results["lumbar-conservative"]
    assert row["HasLowBackPain"] is True
    assert row["WeeksOfLowBackPain"] == 16
    assert row["WeeksOfConservativeTherapy"] == 8
    assert row["SixWeeksOfConservativeTherapy"] is True
    assert row["HasNeurologicalDeficit"] is True
    assert row["HasRedFlags"] is False


def test_lumbar_mri_red_flags_ignore_resolved_conditions(results: Results) -> None:
    row = results["lumbar-red-flag"]
    assert row["HasRedFlags"] is True
    assert [c["code"] for c in row["RedFlagCodings"]] == ["G83.4"]
    assert row["SixWeeksOfConservativeTherapy"] is False
    assert row["WeeksOfLowBackPain"] == 0


def test_cpap_takes_most_recent_ahi_and_mild_osa_rule(results: Results) -> None:
    row = results["cpap-mild-with-comorbidity"]
    assert row["HasObstructiveSleepApnea"] is True
    assert row["MostRecentAHI"] == 11.5
    assert row["SleepStudyDate"] == "2026-10-03"
    assert row["HasMildOSAComorbidity"] is True
    assert row["AHIQualifies"] is True
    assert row["FaceToFaceEvaluationDate"] == "2026-09-15"


def test_cpap_without_study_leaves_answers_empty(results: Results) -> None:
    row = results["cpap-untested"]
    assert row["MostRecentAHI"] is None
    assert row["AHIQualifies"] is False
    assert row["HasObstructiveSleepApnea"] is False


def test_home_oxygen_blood_gas(results: Results) -> None:
    row = results["home-oxygen-qualifying"]
    assert row["MostRecentSpO2"] == 86
    assert row["MostRecentPaO2"] == 52
    assert row["QualifyingTestDate"] == "2026-11-18"
    assert row["BloodGasQualifies"] is True
    assert row["QualifyingConditionCoding"]["code"] == "J44.9"
    assert results["home-oxygen-normal"]["BloodGasQualifies"] is False
    assert results["home-oxygen-normal"]["HasQualifyingCondition"] is False


def test_biologic_indication_therapy_tb_and_weight(results: Results) -> None:
    row = results["biologic-crohns"]
    assert row["PrimaryIndicationCoding"]["code"] == "K50.90"
    assert row["TriedConventionalTherapy"] is True
    assert row["ConventionalTherapyNames"] == ["Azathioprine 50 MG Oral Tablet"]
    assert row["TBScreeningNegative"] is True
    assert row["TBScreeningDate"] == "2026-10-20"
    assert row["MostRecentWeightKg"] == 72.5


def test_ct_abdomen_and_knee(results: Results) -> None:
    assert [c["code"] for c in results["ct-abdomen"]["IndicationCodings"]] == ["R10.31"]
    assert results["ct-abdomen"]["ReducedRenalFunction"] is True
    knee = results["knee"]
    assert knee["HasKneeOsteoarthritis"] is True
    assert knee["WeeksOfNonoperativeTreatment"] == 21
    assert knee["TwelveWeeksOfNonoperativeTreatment"] is True
    assert knee["MostRecentBMI"] == 31.2


def prepopulated(catalog: Catalog, form: str, row: dict[str, Any]) -> dict[str, Any]:
    """What a DTR client puts in each item: the result of its `"Library".Definition` initialExpression."""
    key = catalog.questionnaire_key(f"https://priorgate.org/fhir/Questionnaire/{form}")
    assert key is not None
    answers: dict[str, Any] = {}
    pending = list(catalog.questionnaires[key]["item"])
    while pending:
        item = pending.pop(0)
        pending.extend(item.get("item", []))
        for ext in item.get("extension", []):
            if ext["url"].endswith("sdc-questionnaire-initialExpression"):
                define = ext["valueExpression"]["expression"].split(".", 1)[1]
                assert define in row, f"{form}: {define} was not evaluated"
                answers[item["linkId"]] = row[define]
    return answers


def test_forms_prepopulate_from_the_ehr_data(catalog: Catalog, results: Results) -> None:
    assert prepopulated(catalog, "lumbar-spine-mri", results["lumbar-conservative"]) == {
        "low-back-pain": True,
        "pain-duration-weeks": 16,
        "neuro-deficit": True,
        "red-flags": False,
        "conservative-therapy": True,
        "conservative-therapy-weeks": 8,
    }
    cpap = prepopulated(catalog, "cpap", results["cpap-mild-with-comorbidity"])
    assert cpap == {
        "osa-diagnosis": True,
        "face-to-face-date": "2026-09-15",
        "study-date": "2026-10-03",
        "ahi": 11.5,
        "mild-osa-comorbidity": True,
    }
    oxygen = prepopulated(catalog, "home-oxygen", results["home-oxygen-qualifying"])
    assert oxygen["spo2"] == 86 and oxygen["pao2"] == 52 and oxygen["test-date"] == "2026-11-18"
    assert oxygen["condition"]["code"] == "J44.9"
    biologic = prepopulated(catalog, "biologic-infusion", results["biologic-crohns"])
    assert biologic["weight-kg"] == 72.5 and biologic["tb-screening-negative"] is True
    assert prepopulated(catalog, "total-knee-arthroplasty", results["knee"])["bmi"] == 31.2
    assert prepopulated(catalog, "ct-abdomen", results["ct-abdomen"]) == {"egfr": 24}
