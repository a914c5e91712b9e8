"""Da Vinci DTR payer server checks (DTR 2.0.1 as the Inferno DTR test kit tests it, plus 2.2.0 shapes).

Modelled on the kit's payer server groups: static package retrieval (response shape, Libraries, root
extensions, item expressions), adaptive retrieval with ``$next-question`` driven to completion, and the
other payer operations (``ValueSet/$expand``, ``$log-questionnaire-errors``) with their error answers.
The requests use the PriorGate demo payer content (CPAP HCPCS E0601, adaptive home oxygen); nothing is
imported from the server.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from conformance.framework import (
    CheckFailed,
    Suite,
    Target,
    check,
    expect,
    expect_operation_outcome,
    expect_status,
)
from conformance.requirements import rows_csv

Json = dict[str, Any]

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
DEMO = "https://priorgate.org/fhir"
CPAP = f"{DEMO}/Questionnaire/cpap"
HOME_OXYGEN = f"{DEMO}/Questionnaire/home-oxygen-adaptive"
DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CQF_LIBRARY = "http://hl7.org/fhir/StructureDefinition/cqf-library"
VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
ADAPTIVE = SDC + "sdc-questionnaire-questionnaireAdaptive"
PREPOPULATION = {
    SDC + "sdc-questionnaire-launchContext",
    VARIABLE,
    SDC + "sdc-questionnaire-itemPopulationContext",
    CQF_LIBRARY,
}
ITEM_EXPRESSIONS = {
    SDC + "sdc-questionnaire-initialExpression",
    SDC + "sdc-questionnaire-candidateExpression",
    SDC + "sdc-questionnaire-contextExpression",
}
# Where each DTR version is served and the name of its package output parameter.
PACKAGE_PATHS = {
    "default": ("Questionnaire/$questionnaire-package", "PackageBundle"),
    "2.0.1": ("/dtr/2.0.1/Questionnaire/$questionnaire-package", "PackageBundle"),
    "2.2.0": ("/dtr/2.2.0/Questionnaire/$questionnaire-package", "packagebundle"),
}
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MAX_STEPS = 12

# Answers that walk the demo home oxygen form down its qualifying path (resting SpO2 86 % by oximetry).
ANSWERS = f"{DEMO}/CodeSystem/dtr-answers"
HOME_OXYGEN_ANSWERS: dict[str, Json] = {
    "condition": {"valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J44.9"}},
    "test-method": {"valueCoding": {"system": ANSWERS, "code": "oximetry"}},
    "test-condition": {"valueCoding": {"system": ANSWERS, "code": "rest"}},
    "test-date": {"valueDate": "2026-11-18"},
    "spo2": {"valueDecimal": 86},
    "flow-rate": {"valueDecimal": 2},
    "hours-per-day": {"valueInteger": 24},
    "portable": {"valueBoolean": True},
}


def _coverage() -> Json:
    return {
        "resourceType": "Coverage",
        "id": f"cov-{uuid.uuid4().hex[:8]}",
        "status": "active",
        "beneficiary": {"reference": "Patient/dtr-pat-1"},
        "payor": [{"reference": "Organization/payer"}],
    }


def _order(code: str) -> Json:
    return {
        "resourceType": "DeviceRequest",
        "id": f"ord-{uuid.uuid4().hex[:8]}",
        "status": "draft",
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": code}]},
        "subject": {"reference": "Patient/dtr-pat-1"},
    }


def package_request(code: str = "E0601") -> Json:
    """A ``dtr-qpackage-input-parameters`` body: a Coverage and one DeviceRequest for HCPCS ``code``."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": _coverage()},
            {"name": "order", "resource": _order(code)},
        ],
    }


def adaptive_request() -> Json:
    """A package request naming the adaptive home oxygen Questionnaire by canonical."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": _coverage()},
            {"name": "questionnaire", "valueCanonical": HOME_OXYGEN},
        ],
    }


def _json_object(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError as exc:
        raise CheckFailed(f"body is not JSON: {response.text[:200]!r}") from exc
    expect(isinstance(body, dict), "body is not a JSON object")
    return dict(body)


def _package_url(target: Target, version: str) -> str:
    path = PACKAGE_PATHS[version][0]
    return path if path.startswith("/") else target.fhir(path)


def _packages(target: Target, body: Json, version: str = "default") -> list[Json]:
    """POST a package request; the 200 answer is Parameters holding at least one collection Bundle."""
    response = target.post(_package_url(target, version), json=body, headers=FHIR_JSON)
    expect_status(response, 200, 201)
    media = response.headers.get("content-type", "")
    expect("json" in media, f"the package is served as {media!r}")
    result = _json_object(response)
    expect(result.get("resourceType") == "Parameters", f"package answer is a {result.get('resourceType')!r}")
    name = PACKAGE_PATHS[version][1]
    parameters = [p for p in result.get("parameter") or [] if isinstance(p, dict)]
    values = [p.get("resource") for p in parameters if p.get("name") == name]
    expect(bool(values), f"Parameters has no {name!r} parameter (has {[p.get('name') for p in parameters]})")
    expect(all(isinstance(v, dict) for v in values), f"a {name} parameter holds no resource")
    bundles = [dict(v) for v in values if isinstance(v, dict)]
    for bundle in bundles:
        expect(bundle.get("resourceType") == "Bundle", f"{name} is a {bundle.get('resourceType')!r}")
        expect(bundle.get("type") == "collection", f"{name} Bundle type is {bundle.get('type')!r}")
        expect(bool(bundle.get("entry")), f"{name} Bundle has no entries")
    return bundles


def _resources(bundle: Json, resource_type: str) -> list[Json]:
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
            out.append(resource)
    return out


def _questionnaire(bundle: Json) -> Json:
    entries = bundle.get("entry") or []
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    expect(
        isinstance(first, dict) and first.get("resourceType") == "Questionnaire",
        "the first package entry is not the Questionnaire",
    )
    return dict(first) if isinstance(first, dict) else {}


def _items(items: Any) -> Iterator[Json]:
    for item in items or []:
        if isinstance(item, dict):
            yield item
            yield from _items(item.get("item"))


def _extensions(element: Json, urls: set[str]) -> list[Json]:
    return [e for e in element.get("extension") or [] if isinstance(e, dict) and e.get("url") in urls]


def _resolves(canonical: str, resources: list[Json]) -> bool:
    """``canonical`` names a resource by its url (exactly, as the kit matches) or url|version."""
    url, _, version = canonical.partition("|")
    return any(r.get("url") == url and (not version or r.get("version") == version) for r in resources)


def _expect_libraries(bundle: Json) -> list[Json]:
    """Kit test 1.04: at least one Library, each with CQL and ELM JSON content, names unique."""
    libraries = _resources(bundle, "Library")
    expect(bool(libraries), "the package has no Library")
    for library in libraries:
        content = [c for c in library.get("content") or [] if isinstance(c, dict)]
        types = {c.get("contentType") for c in content}
        expect(
            {"text/cql", "application/elm+json"} <= types,
            f"Library {library.get('url')!r} has content types {sorted(map(str, types))}, "
            "needs text/cql and application/elm+json",
        )
        expect(all(c.get("data") for c in content), f"Library {library.get('url')!r} content has no data")
        for related in library.get("relatedArtifact") or []:
            if isinstance(related, dict) and related.get("type") == "depends-on":
                target = str(related.get("resource", ""))
                if "/Library/" in target:
                    expect(_resolves(target, libraries), f"depends-on {target!r} is not in the package")
    names = [library.get("name") for library in libraries]
    expect(all(names), "a Library has no name")
    expect(len(names) == len(set(names)), f"Library names are not unique: {names}")
    urls = [(library.get("url"), library.get("version")) for library in libraries]
    expect(len(urls) == len(set(urls)), "a Library appears more than once in one package")
    return libraries


def _expect_root_extensions(questionnaire: Json, libraries: list[Json]) -> None:
    """Kit test 1.05: pre-population extensions present, CQL only, every cqf-library in the package."""
    expect(
        bool(_extensions(questionnaire, PREPOPULATION)),
        "the Questionnaire has none of launchContext, variable, itemPopulationContext, cqf-library",
    )
    for ext in _extensions(questionnaire, {VARIABLE, SDC + "sdc-questionnaire-itemPopulationContext"}):
        language = (ext.get("valueExpression") or {}).get("language")
        expect(language == "text/cql", f"{ext.get('url')} expression language is {language!r}")
    references = [str(e.get("valueCanonical", "")) for e in _extensions(questionnaire, {CQF_LIBRARY})]
    expect(bool(references), "the Questionnaire has no cqf-library")
    for reference in references:
        expect(_resolves(reference, libraries), f"cqf-library {reference!r} matches no Library.url")


def _expect_item_expressions(questionnaire: Json) -> None:
    """Kit test 1.06: at least one initial/candidate/context expression, all of them CQL."""
    found = [e for item in _items(questionnaire.get("item")) for e in _extensions(item, ITEM_EXPRESSIONS)]
    expect(bool(found), "no item has an initial, candidate or context expression")
    for ext in found:
        language = (ext.get("valueExpression") or {}).get("language")
        expect(language == "text/cql", f"{ext.get('url')} expression language is {language!r}")


@check(
    "package-static-response",
    "$questionnaire-package answers 200 with Parameters holding PackageBundle collection Bundles",
    "davinci-dtr-2.0.1#req-239",
    "davinci-dtr-2.0.1#req-292",
    "davinci-dtr-2.2.0#dtrb-1",
)
def package_static_response(target: Target) -> None:
    for version in ("default", "2.0.1"):
        [bundle] = _packages(target, package_request(), version)[:1]
        questionnaire = _questionnaire(bundle)
        expect(questionnaire.get("url") == CPAP, f"CPAP order got Questionnaire {questionnaire.get('url')!r}")


@check(
    "package-draft-response",
    "each package holds one draft QuestionnaireResponse for its Questionnaire, subject from the Coverage",
    "davinci-dtr-2.2.0#spec-122",
)
def package_draft_response(target: Target) -> None:
    for bundle in _packages(target, package_request()):
        questionnaire = _questionnaire(bundle)
        responses = _resources(bundle, "QuestionnaireResponse")
        expect(len(responses) == 1, f"package has {len(responses)} QuestionnaireResponses, expected 1")
        draft = responses[0]
        canonical = f"{questionnaire.get('url')}|{questionnaire.get('version')}"
        expect(
            draft.get("questionnaire") in (canonical, questionnaire.get("url")),
            f"draft QuestionnaireResponse.questionnaire {draft.get('questionnaire')!r} is not {canonical!r}",
        )
        expect(draft.get("status") == "in-progress", f"draft status is {draft.get('status')!r}")
        subject = (draft.get("subject") or {}).get("reference")
        expect(subject == "Patient/dtr-pat-1", f"draft subject {subject!r} is not the Coverage beneficiary")


@check(
    "package-static-libraries",
    "every package Library carries CQL and ELM JSON, names are unique, depends-on resolves",
    "davinci-dtr-2.2.0#spec-95",
    "davinci-dtr-2.2.0#spec-98",
    "davinci-dtr-2.2.0#spec-99",
)
def package_static_libraries(target: Target) -> None:
    for bundle in _packages(target, package_request()):
        _expect_libraries(bundle)


@check(
    "package-static-extensions",
    "the Questionnaire demonstrates pre-population and every cqf-library resolves in the package",
    "davinci-dtr-2.2.0#spec-97",
)
def package_static_extensions(target: Target) -> None:
    for bundle in _packages(target, package_request()):
        _expect_root_extensions(_questionnaire(bundle), _resources(bundle, "Library"))


@check(
    "package-static-expressions",
    "item initial/candidate/context expressions exist and are CQL",
    "davinci-dtr-2.2.0#spec-92",
)
def package_static_expressions(target: Target) -> None:
    for bundle in _packages(target, package_request()):
        _expect_item_expressions(_questionnaire(bundle))


@check(
    "package-value-sets",
    "every answerValueSet is shipped once in the package, small value sets expanded",
    "davinci-dtr-2.2.0#oper-15",
)
def package_value_sets(target: Target) -> None:
    for bundle in _packages(target, package_request()):
        value_sets = _resources(bundle, "ValueSet")
        wanted = {
            str(i["answerValueSet"])
            for i in _items(_questionnaire(bundle).get("item"))
            if "answerValueSet" in i
        }
        expect(bool(wanted), "the CPAP Questionnaire uses no answerValueSet")
        for canonical in sorted(wanted):
            expect(_resolves(canonical, value_sets), f"answerValueSet {canonical!r} is not in the package")
        keys = [(v.get("url"), v.get("version")) for v in value_sets]
        expect(len(keys) == len(set(keys)), "a ValueSet appears more than once in one package")
        for value_set in value_sets:
            contains = (value_set.get("expansion") or {}).get("contains")
            expect(bool(contains), f"ValueSet {value_set.get('url')!r} is shipped without an expansion")


@check(
    "package-2.2.0",
    "the 2.2.0 endpoint names its output packagebundle and links the draft to the Coverage",
    "davinci-dtr-2.2.0#dtrb-1",
    "davinci-dtr-2.2.0#spec-122",
)
def package_220(target: Target) -> None:
    [bundle] = _packages(target, package_request(), "2.2.0")[:1]
    questionnaire = _questionnaire(bundle)
    expect(questionnaire.get("url") == CPAP, f"CPAP order got Questionnaire {questionnaire.get('url')!r}")
    responses = _resources(bundle, "QuestionnaireResponse")
    expect(len(responses) == 1, f"2.2.0 package has {len(responses)} QuestionnaireResponses, expected 1")
    coverage = _extensions(responses[0], {DTR + "qr-coverage"})
    expect(bool(coverage), "the 2.2.0 draft QuestionnaireResponse has no qr-coverage")
    expect(bool(_extensions(responses[0], {DTR + "qr-context"})), "the 2.2.0 draft has no qr-context order")


@check(
    "package-requested-canonicals",
    "requested canonicals limit the result; an unknown one is a warning in the outcome parameter",
    "davinci-dtr-2.2.0#oper-9",
)
def package_requested_canonicals(target: Target) -> None:
    unknown = f"{DEMO}/Questionnaire/unknown-{uuid.uuid4().hex[:8]}"
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": _coverage()},
            {"name": "questionnaire", "valueCanonical": f"{CPAP}|1.0.0"},
            {"name": "questionnaire", "valueCanonical": unknown},
        ],
    }
    response = target.post(_package_url(target, "default"), json=body, headers=FHIR_JSON)
    expect_status(response, 200)
    result = _json_object(response)
    parameters = [p for p in result.get("parameter") or [] if isinstance(p, dict)]
    bundles = [p.get("resource") for p in parameters if p.get("name") == "PackageBundle"]
    expect(len(bundles) == 1, f"two requested canonicals (one unknown) gave {len(bundles)} packages")
    bundle = bundles[0] if isinstance(bundles[0], dict) else {}
    questionnaire = _questionnaire(bundle)
    expect(
        (questionnaire.get("url"), questionnaire.get("version")) == (CPAP, "1.0.0"),
        f"asked for {CPAP}|1.0.0, got {questionnaire.get('url')}|{questionnaire.get('version')}",
    )
    outcomes = [p.get("resource") for p in parameters if p.get("name") == "outcome"]
    issues = [
        i
        for o in outcomes
        if isinstance(o, dict) and o.get("resourceType") == "OperationOutcome"
        for i in o.get("issue") or []
        if isinstance(i, dict)
    ]
    expect(bool(issues), "the unknown canonical is not reported in an outcome parameter")
    severities = {i.get("severity") for i in issues}
    expect(severities <= {"warning", "information"}, f"the outcome has severities {severities}")
    expect(
        any(unknown in str(i.get("diagnostics", "")) for i in issues),
        "the outcome does not name the canonical",
    )


@check(
    "package-bad-input",
    "bad package requests answer 4xx with an OperationOutcome",
    "davinci-dtr-2.2.0#spec-130",
)
def package_bad_input(target: Target) -> None:
    url = _package_url(target, "default")
    garbage = target.post(url, content=b"{not json", headers=FHIR_JSON)
    expect_status(garbage, 400)
    expect_operation_outcome(garbage)
    wrong = target.post(url, json={"resourceType": "Patient"}, headers=FHIR_JSON)
    expect_status(wrong, 400, 422)
    expect_operation_outcome(wrong)
    undocumented = target.post(url, json=package_request("A9999"), headers=FHIR_JSON)
    expect(
        400 <= undocumented.status_code < 500,
        f"an order with no documentation rules answered {undocumented.status_code}",
    )
    expect_operation_outcome(undocumented)
    context = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": _coverage()},
            {"name": "context", "valueString": f"unknown-{uuid.uuid4().hex}"},
        ],
    }
    unknown_context = target.post(url, json=context, headers=FHIR_JSON)
    expect(
        400 <= unknown_context.status_code < 500,
        f"an unknown context id answered {unknown_context.status_code}",
    )
    expect_operation_outcome(unknown_context)


def _adaptive_package(target: Target) -> Json:
    [bundle] = _packages(target, adaptive_request())[:1]
    return bundle


@check(
    "adaptive-package",
    "the adaptive package serves an item-less adapt-search Questionnaire, Libraries and a contained draft",
    "davinci-dtr-2.0.1#req-37",
    "davinci-dtr-2.2.0#spec-23",
    "davinci-dtr-2.2.0#spec-25",
)
def adaptive_package(target: Target) -> None:
    bundle = _adaptive_package(target)
    questionnaire = _questionnaire(bundle)
    expect(questionnaire.get("url") == HOME_OXYGEN, f"got Questionnaire {questionnaire.get('url')!r}")
    expect(not questionnaire.get("item"), "the adapt-search Questionnaire has items")
    adaptive = _extensions(questionnaire, {ADAPTIVE})
    expect(bool(adaptive) and all(e.get("valueUrl") for e in adaptive), "no questionnaireAdaptive valueUrl")
    libraries = _expect_libraries(bundle)
    _expect_root_extensions(questionnaire, libraries)
    responses = _resources(bundle, "QuestionnaireResponse")
    expect(len(responses) == 1, f"adaptive package has {len(responses)} QuestionnaireResponses")
    contained = [c for c in responses[0].get("contained") or [] if isinstance(c, dict)]
    expect(
        bool(contained) and contained[0].get("resourceType") == "Questionnaire",
        "the draft does not contain the adaptive Questionnaire",
    )
    derived = [str(d).partition("|")[0] for d in contained[0].get("derivedFrom") or []]
    expect(HOME_OXYGEN in derived, f"contained Questionnaire derivedFrom {derived} omits {HOME_OXYGEN}")
    expect(
        str(responses[0].get("questionnaire", "")).startswith("#"),
        "the adaptive draft does not reference its contained Questionnaire",
    )


def _next(target: Target, response: Json) -> Json:
    """POST a bare QuestionnaireResponse (or SDC ``questionnaire-response`` Parameters); expect a bare one."""
    answer = target.post(target.fhir("Questionnaire/$next-question"), json=response, headers=FHIR_JSON)
    expect_status(answer, 200, 202)
    body = _json_object(answer)
    expect(
        body.get("resourceType") == "QuestionnaireResponse",
        f"$next-question returned {body.get('resourceType')!r}",
    )
    contained = [c for c in body.get("contained") or [] if isinstance(c, dict)]
    expect(
        bool(contained) and contained[0].get("resourceType") == "Questionnaire",
        "the returned QuestionnaireResponse has no contained Questionnaire",
    )
    return body


def _fill(response: Json) -> int:
    """Answer every asked, unanswered question (flat, as the demo form accepts); return how many."""
    answered = {i.get("linkId") for i in _items(response.get("item"))}
    added = 0
    for item in _items(response["contained"][0].get("item")):
        link_id = item.get("linkId")
        if link_id in answered or item.get("type") in ("group", "display"):
            continue
        value = HOME_OXYGEN_ANSWERS.get(str(link_id))
        if value is None and item.get("type") == "boolean":
            value = {"valueBoolean": True}
        if value is not None:
            response.setdefault("item", []).append({"linkId": link_id, "answer": [value]})
            added += 1
    return added


@check(
    "adaptive-next-question",
    "$next-question returns bare QuestionnaireResponses with CQL-backed questions until completed",
    "davinci-dtr-2.0.1#req-219",
    "davinci-dtr-2.2.0#spec-36",
)
def adaptive_next_question(target: Target) -> None:
    bundle = _adaptive_package(target)
    libraries = _resources(bundle, "Library")
    drafts = _resources(bundle, "QuestionnaireResponse")
    expect(len(drafts) == 1, "the adaptive package has no single draft QuestionnaireResponse")
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": drafts[0]}],
    }
    response = _next(target, wrapped)
    expressions_seen = False
    for _ in range(MAX_STEPS):
        if response.get("status") == "completed":
            break
        expect(response.get("status") == "in-progress", f"status is {response.get('status')!r}")
        contained = response["contained"][0]
        _expect_root_extensions(contained, libraries)
        found = [e for i in _items(contained.get("item")) for e in _extensions(i, ITEM_EXPRESSIONS)]
        expressions_seen = expressions_seen or bool(found)
        for ext in found:
            language = (ext.get("valueExpression") or {}).get("language")
            expect(language == "text/cql", f"{ext.get('url')} expression language is {language!r}")
        expect(_fill(response) > 0, "an in-progress step asks nothing new that could be answered")
        response = _next(target, response)
    expect(response.get("status") == "completed", f"not completed after {MAX_STEPS} steps")
    expect(expressions_seen, "no adaptive step carried a CQL initial/candidate/context expression")
    expect(bool(response.get("item")), "the completed QuestionnaireResponse lost its answers")


@check(
    "next-question-invalid",
    "$next-question answers 400 with an OperationOutcome for a response that is not valid",
    "davinci-dtr-2.2.0#spec-147",
)
def next_question_invalid(target: Target) -> None:
    url = target.fhir("Questionnaire/$next-question")
    wrong = target.post(url, json={"resourceType": "Patient"}, headers=FHIR_JSON)
    expect_status(wrong, 400)
    expect_operation_outcome(wrong)
    drafts = _resources(_adaptive_package(target), "QuestionnaireResponse")
    expect(len(drafts) == 1, "the adaptive package has no single draft QuestionnaireResponse")
    unasked = copy.deepcopy(drafts[0])
    unasked["item"] = [{"linkId": "flow-rate", "answer": [{"valueDecimal": 2}]}]
    refused = target.post(url, json=unasked, headers=FHIR_JSON)
    expect_status(refused, 400)
    expect_operation_outcome(refused)


@check(
    "valueset-expand",
    "ValueSet/$expand expands a packaged value set by url and refuses missing or unknown urls",
    "davinci-dtr-2.2.0#oper-15",
)
def valueset_expand(target: Target) -> None:
    bundle = _packages(target, package_request())[0]
    wanted = sorted(
        {
            str(i["answerValueSet"])
            for i in _items(_questionnaire(bundle).get("item"))
            if "answerValueSet" in i
        }
    )
    expect(bool(wanted), "the CPAP Questionnaire uses no answerValueSet")
    url = target.fhir("ValueSet/$expand")
    canonical = wanted[0].partition("|")[0]
    by_get = target.get(url, params={"url": canonical})
    expect_status(by_get, 200)
    body = _json_object(by_get)
    expect(body.get("resourceType") == "ValueSet", f"$expand returned {body.get('resourceType')!r}")
    expect(bool((body.get("expansion") or {}).get("contains")), "the expansion has no codes")
    by_post = target.post(
        url,
        json={"resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": canonical}]},
        headers=FHIR_JSON,
    )
    expect_status(by_post, 200)
    expect(bool((_json_object(by_post).get("expansion") or {}).get("contains")), "POST $expand has no codes")
    missing = target.get(url)
    expect_status(missing, 400)
    expect_operation_outcome(missing)
    unknown = target.get(url, params={"url": f"{DEMO}/ValueSet/unknown-{uuid.uuid4().hex[:8]}"})
    expect_status(unknown, 404, 400)
    expect_operation_outcome(unknown)


@check(
    "log-questionnaire-errors",
    "$log-questionnaire-errors accepts an OperationOutcome and refuses a request without one",
    "davinci-dtr-2.2.0#cap-log-questionnaire-errors",
)
def log_questionnaire_errors(target: Target) -> None:
    url = target.fhir("Questionnaire/$log-questionnaire-errors")
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "questionnaire", "valueCanonical": CPAP},
            {
                "name": "operationOutcome",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "processing", "diagnostics": "CQL failed"}],
                },
            },
        ],
    }
    accepted = target.post(url, json=body, headers=FHIR_JSON)
    expect_status(accepted, 200, 204)
    if accepted.status_code == 200 and accepted.content:
        outcome = expect_operation_outcome(accepted)
        severities = {i.get("severity") for i in outcome["issue"] if isinstance(i, dict)}
        expect(not severities & {"error", "fatal"}, f"an accepted log answered with {severities}")
    incomplete = {"resourceType": "Parameters", "parameter": body["parameter"][:1]}
    refused = target.post(url, json=incomplete, headers=FHIR_JSON)
    expect_status(refused, 400)
    expect_operation_outcome(refused)


_STU2 = "https://hl7.org/fhir/us/davinci-dtr/STU2/"
_CURRENT = "https://build.fhir.org/ig/HL7/davinci-dtr/"
_IG = "hl7.fhir.us.davinci-dtr"

REQUIREMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "davinci-dtr-2.0.1#req-239",
        _IG,
        "2.0.1",
        _STU2 + "specification.html#questionnaire-package-operation",
        "The payer server SHALL support the $questionnaire-package operation",
        "payer",
    ),
    (
        "davinci-dtr-2.0.1#req-292",
        _IG,
        "2.0.1",
        _STU2 + "specification.html#questionnaire-package-operation",
        "$questionnaire-package is invoked at [base]/Questionnaire/$questionnaire-package",
        "payer",
    ),
    (
        "davinci-dtr-2.0.1#req-37",
        _IG,
        "2.0.1",
        _STU2 + "StructureDefinition-dtr-questionnaire-adapt-search.html",
        "An adaptive package serves a Questionnaire conforming to dtr-questionnaire-adapt-search",
        "payer",
    ),
    (
        "davinci-dtr-2.0.1#req-219",
        _IG,
        "2.0.1",
        _STU2 + "specification.html#adaptive-form-considerations",
        "When no further questions remain, $next-question returns the response with status completed",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#dtrb-1",
        _IG,
        "2.2.0",
        _CURRENT + "StructureDefinition-DTR-QPackageBundle.html",
        "The first entry of a questionnaire package Bundle is the Questionnaire",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-122",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html",
        "The package QuestionnaireResponse.questionnaire SHALL equal the packaged Questionnaire canonical",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-95",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#cql-and-elm",
        "Libraries SHALL contain the CQL source (text/cql)",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-99",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#cql-and-elm",
        "Libraries SHALL contain the compiled ELM (application/elm+json)",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-98",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#cql-and-elm",
        "Library names SHALL be unique within a questionnaire package",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-97",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#cql-and-elm",
        "Questionnaires name their CQL Libraries with cqf-library; the package carries those Libraries",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-92",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#cql-and-elm",
        "Pre-population logic in Questionnaires is expressed in CQL",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#oper-15",
        _IG,
        "2.2.0",
        _CURRENT + "OperationDefinition-questionnaire-package.html",
        "Value sets are shipped expanded (small ones) and expandable with ValueSet/$expand",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#oper-9",
        _IG,
        "2.2.0",
        _CURRENT + "OperationDefinition-questionnaire-package.html",
        "A requested Questionnaire canonical the payer does not know is reported as a warning in outcome",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-130",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html",
        "Problems with the source data of a package request SHALL be answered 4xx with an OperationOutcome",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-23",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#adaptive-form-considerations",
        "An adaptive package carries an item-less Questionnaire with questionnaireAdaptive",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-25",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#adaptive-form-considerations",
        "The adaptive QuestionnaireResponse contains a Questionnaire derived from the served canonical",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-36",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#adaptive-form-considerations",
        "$next-question returns the next questions until the form is complete",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#spec-147",
        _IG,
        "2.2.0",
        _CURRENT + "specification.html#adaptive-form-considerations",
        "A QuestionnaireResponse invalid for its contained Questionnaire SHALL get 400 + OperationOutcome",
        "payer",
    ),
    (
        "davinci-dtr-2.2.0#cap-log-questionnaire-errors",
        _IG,
        "2.2.0",
        _CURRENT + "OperationDefinition-log-questionnaire-errors.html",
        "The dtr-payer-service CapabilityStatement: the payer SHALL support $log-questionnaire-errors",
        "payer",
    ),
)


def requirements_csv() -> str:
    return rows_csv(REQUIREMENTS)


SUITE = Suite(
    name="dtr-payer",
    title="Da Vinci DTR payer server (2.0.1 as the test kit checks it, and 2.2.0)",
    checks=(
        package_static_response,
        package_draft_response,
        package_static_libraries,
        package_static_extensions,
        package_static_expressions,
        package_value_sets,
        package_220,
        package_requested_canonicals,
        package_bad_input,
        adaptive_package,
        adaptive_next_question,
        next_question_invalid,
        valueset_expand,
        log_questionnaire_errors,
    ),
)
