"""Canonical URLs PriorGate's DTR content and operations use (Da Vinci DTR 2.0.1 / 2.2.0, SDC, CRD)."""

from __future__ import annotations

from typing import Final, Literal

DtrVersion = Literal["2.0.1", "2.2.0"]
DTR_VERSIONS: Final = ("2.0.1", "2.2.0")

BASE: Final = "https://priorgate.org/fhir"
CONTENT_VERSION: Final = "1.0.0"
NEXT_QUESTION_PATH: Final = "/Questionnaire/$next-question"

# Da Vinci DTR profiles and extensions.
DTR: Final = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
STD_QUESTIONNAIRE: Final = DTR + "dtr-std-questionnaire"
ADAPT_SEARCH_QUESTIONNAIRE: Final = DTR + "dtr-questionnaire-adapt-search"
ADAPT_QUESTIONNAIRE: Final = DTR + "dtr-questionnaire-adapt"
DTR_QUESTIONNAIRE_RESPONSE: Final = DTR + "dtr-questionnaireresponse"
DTR_QUESTIONNAIRE_RESPONSE_ADAPT: Final = DTR + "dtr-questionnaireresponse-adapt"
QPACKAGE_BUNDLE: Final = DTR + "DTR-QPackageBundle"
QPACKAGE_OUTPUT_PARAMETERS: Final = DTR + "dtr-qpackage-output-parameters"
QR_CONTEXT: Final = DTR + "qr-context"
QR_COVERAGE: Final = DTR + "qr-coverage"
INTENDED_USE: Final = DTR + "intendedUse"
INFORMATION_ORIGIN: Final = DTR + "information-origin"

# CRD coverage-information (carried by completed adaptive QuestionnaireResponses).
COVERAGE_INFORMATION: Final = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
CRD_TEMP_CODES: Final = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
CRD_COVERAGE_INFORMATION_CODES: Final = (
    "http://hl7.org/fhir/us/davinci-crd/CodeSystem/coverage-information-codes"
)

# SDC and core extensions.
SDC: Final = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
QUESTIONNAIRE_ADAPTIVE: Final = SDC + "sdc-questionnaire-questionnaireAdaptive"
INITIAL_EXPRESSION: Final = SDC + "sdc-questionnaire-initialExpression"
CANDIDATE_EXPRESSION: Final = SDC + "sdc-questionnaire-candidateExpression"
CALCULATED_EXPRESSION: Final = SDC + "sdc-questionnaire-calculatedExpression"
ENABLE_WHEN_EXPRESSION: Final = SDC + "sdc-questionnaire-enableWhenExpression"
CONTEXT_EXPRESSION: Final = SDC + "sdc-questionnaire-contextExpression"
LAUNCH_CONTEXT: Final = SDC + "sdc-questionnaire-launchContext"
CQF_LIBRARY: Final = "http://hl7.org/fhir/StructureDefinition/cqf-library"
VARIABLE: Final = "http://hl7.org/fhir/StructureDefinition/variable"
DERIVATION_TYPE: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-derivationType"

# PriorGate marker on a contained adaptive Questionnaire whose DTR session was launched from a pended PAS
# request: such a session never offers a satisfied-pa-id (DTR spec-42).
PAS_TRIGGERED: Final = BASE + "/StructureDefinition/dtr-pas-triggered"

LIBRARY_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/library-type"
USAGE_CONTEXT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/usage-context-type"
ANSWER_CODES: Final = BASE + "/CodeSystem/dtr-answers"

MIME_CQL: Final = "text/cql"
MIME_ELM_JSON: Final = "application/elm+json"


def package_bundle_parameter(version: DtrVersion) -> str:
    """Output parameter name of $questionnaire-package: `PackageBundle` (2.0.1) or `packagebundle` (2.2.0)."""
    return "PackageBundle" if version == "2.0.1" else "packagebundle"


def canonical_of(url: str, version: str) -> str:
    return f"{url}|{version}"


def split_canonical(canonical: str) -> tuple[str, str | None]:
    """`url|version` -> (url, version); an unversioned canonical gives (url, None)."""
    url, sep, version = canonical.partition("|")
    return url, (version if sep and version else None)
