"""`Questionnaire/$next-question` for the adaptive home oxygen form (SDC adaptive questionnaires; DTR
2.0.1 §4.3.4 / 2.2.0 adaptive forms): QuestionnaireResponse in, QuestionnaireResponse out.

Stateless: all state is the QuestionnaireResponse and its contained adapted Questionnaire. Each call
appends the next step's items (reusing the static home oxygen form's items, CQL prepopulation included;
`enableWhen` is left out because dtr-questionnaire-adapt forbids it: the steps decide relevance) and,
when the coverage criteria are met, asks whether to issue a prior authorization number (spec-41). The last
call returns status `completed` with a CRD coverage-information extension carrying `satisfied-pa-id` when
the user said yes (spec-33, spec-41).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import uuid4

import orjson

from igs.outcome import invalid
from questionnaires.canonicals import (
    BASE,
    COVERAGE_INFORMATION,
    ENABLE_WHEN_EXPRESSION,
    PAS_TRIGGERED,
    QR_CONTEXT,
    QR_COVERAGE,
    split_canonical,
)
from questionnaires.catalog import Catalog, Resource
from questionnaires.shape import check_structure, parameter_list

HOME_OXYGEN_ADAPTIVE = f"{BASE}/Questionnaire/home-oxygen-adaptive"
HOME_OXYGEN = f"{BASE}/Questionnaire/home-oxygen"
PA_QUESTION = "issue-pa-number"
CLINICAL_COMPLETE = "clinical-complete"
PA_NUMBER_PREFIX = "PGDEMO-"


@dataclass(frozen=True)
class _Answers:
    values: dict[str, list[Any]]

    def first(self, link_id: str) -> Any:
        found = self.values.get(link_id)
        return found[0] if found else None

    def code(self, link_id: str) -> str | None:
        value = self.first(link_id)
        return value.get("code") if isinstance(value, dict) else None

    def number(self, link_id: str) -> Decimal | None:
        value = self.first(link_id)
        if value is None or isinstance(value, bool):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None


def _flatten(items: list[Resource]) -> Iterator[Resource]:
    for item in items:
        yield item
        yield from _flatten(item.get("item", []))
        for answer in item.get("answer", []):
            yield from _flatten(answer.get("item", []))


def _answer_value(answer: Resource) -> Any:
    for name, value in answer.items():
        if name.startswith("value"):
            return value
    return None


def _adaptive_copy(item: Resource, children: Sequence[Resource] | None = None) -> Resource:
    """A bank item for the adapted Questionnaire: no enableWhen (0..0 there), optionally other children."""
    copy: Resource = orjson.loads(orjson.dumps(item))
    copy.pop("enableWhen", None)
    extensions = [e for e in copy.get("extension", []) if e["url"] != ENABLE_WHEN_EXPRESSION]
    if extensions:
        copy["extension"] = extensions
    else:
        copy.pop("extension", None)
    if children is not None:
        copy["item"] = list(children)
    return copy


def _group(bank: dict[str, Resource], link_id: str, *children: str) -> Resource:
    return _adaptive_copy(bank[link_id], [_adaptive_copy(bank[child]) for child in children])


def _qualifying_values(answers: _Answers) -> bool:
    spo2, pao2 = answers.number("spo2"), answers.number("pao2")
    return (spo2 is not None and spo2 <= 88) or (pao2 is not None and pao2 <= 55)


def _criteria_met(answers: _Answers) -> bool:
    """Group I: SpO2 <= 88 % or PaO2 <= 55 mm Hg at rest, during exercise with oxygen improving it, or
    for 5 minutes of sleep; Group II: borderline values with edema, pulmonary hypertension or
    erythrocytosis."""
    if answers.first("group-ii") is True:
        return True
    if not _qualifying_values(answers):
        return False
    condition = answers.code("test-condition")
    if condition == "exertion":
        return answers.first("exercise-improvement") is True
    if condition == "sleep":
        return answers.first("sleep-duration") is True
    return condition == "rest"


# Each step returns the items it wants asked, given the answers so far.
Step = Callable[[dict[str, Resource], _Answers], list[Resource]]


def _step_test(bank: dict[str, Resource], answers: _Answers) -> list[Resource]:
    return [
        _group(bank, "diagnosis", "condition"),
        _group(bank, "blood-gas", "test-method", "test-condition", "test-date"),
    ]


def _step_measurement(bank: dict[str, Resource], answers: _Answers) -> list[Resource]:
    measured = "pao2" if answers.code("test-method") == "abg" else "spo2"
    return [
        {
            "linkId": "measurement",
            "text": "Qualifying value",
            "type": "group",
            "item": [_adaptive_copy(bank[measured])],
        }
    ]


def _step_follow_up(bank: dict[str, Resource], answers: _Answers) -> list[Resource]:
    follow_ups: list[Resource] = []
    condition = answers.code("test-condition")
    if condition == "exertion":
        follow_ups.append(_adaptive_copy(bank["exercise-improvement"]))
    if condition == "sleep":
        follow_ups.append(_adaptive_copy(bank["sleep-duration"]))
    if not _qualifying_values(answers):
        follow_ups.append(_adaptive_copy(bank["group-ii"]))
    items: list[Resource] = []
    if follow_ups:
        items.append(
            {"linkId": "follow-up", "text": "About the qualifying test", "type": "group", "item": follow_ups}
        )
    items.append(
        {
            "linkId": CLINICAL_COMPLETE,
            "text": "Clinical questions are complete; the prescription follows.",
            "type": "display",
        }
    )
    items.append(_group(bank, "prescription", "flow-rate", "hours-per-day", "portable"))
    return items


def _step_authorization(bank: dict[str, Resource], answers: _Answers) -> list[Resource]:
    if not _criteria_met(answers):
        return []
    question = "The home oxygen coverage criteria are met. Issue a prior authorization number now?"
    return [{"linkId": PA_QUESTION, "text": question, "type": "boolean", "required": True}]


STEPS: tuple[Step, ...] = (_step_test, _step_measurement, _step_follow_up, _step_authorization)


def _bank(catalog: Catalog) -> dict[str, Resource]:
    key = catalog.questionnaire_key(HOME_OXYGEN)
    if key is None:
        raise invalid("the home oxygen question bank is not loaded")
    return {item["linkId"]: item for item in _flatten(catalog.questionnaires[key]["item"])}


def _unanswered(items: list[Resource], answers: _Answers) -> list[str]:
    return [
        item["linkId"]
        for item in _flatten(items)
        if item.get("required")
        and item.get("type") not in ("group", "display")
        and item["linkId"] not in answers.values
    ]


def _coverage_reference(response: Resource) -> Resource | None:
    for ext in response.get("extension", []):
        reference = ext.get("valueReference", {}).get("reference", "")
        if ext.get("url") in (QR_COVERAGE, QR_CONTEXT) and reference.startswith("Coverage/"):
            return {"reference": reference}
    return None


def _coverage_information(
    response: Resource, satisfied: bool, pa_id: str | None, *, now: datetime, assertion_id: str
) -> Resource:
    parts: list[Resource] = []
    coverage = _coverage_reference(response)
    if coverage is not None:
        parts.append({"url": "coverage", "valueReference": coverage})
    parts.append({"url": "covered", "valueCode": "covered" if satisfied else "conditional"})
    parts.append({"url": "pa-needed", "valueCode": "satisfied" if pa_id else "auth-needed"})
    if not satisfied:
        parts.append({"url": "info-needed", "valueCode": "clinical"})
    parts.append({"url": "date", "valueDate": now.date().isoformat()})
    parts.append({"url": "coverage-assertion-id", "valueString": assertion_id})
    if pa_id:
        parts.append({"url": "satisfied-pa-id", "valueString": pa_id})
    return {"url": COVERAGE_INFORMATION, "extension": parts}


def _response_of(body: Resource) -> Resource:
    found: Any = body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in parameter_list(body):
            if isinstance(param, dict) and param.get("name") == "questionnaire-response":
                found = param.get("resource")
                break
    if not isinstance(found, dict) or found.get("resourceType") != "QuestionnaireResponse":
        raise invalid(
            "$next-question expects a QuestionnaireResponse (bare or in Parameters)", "QuestionnaireResponse"
        )
    return found


def next_question(
    catalog: Catalog,
    questionnaire_response: Resource,
    *,
    now: datetime,
    new_id: Callable[[], str] = lambda: uuid4().hex,
) -> Resource:
    """`$next-question`: the QuestionnaireResponse with the next step's items appended to its contained
    Questionnaire, or `completed` (with CRD coverage-information) when nothing is left to ask.

    Accepts a bare QR or a Parameters with `questionnaire-response`; an invalid QR (no contained adaptive
    Questionnaire, answers to items never asked, required answers missing) raises
    OperationOutcomeError(INVALID), which the server returns as 400 (DTR 2.2.0 spec-147).
    """
    response: Resource = copy.deepcopy(_response_of(questionnaire_response))
    check_structure(response, "QuestionnaireResponse")
    reference = response.get("questionnaire", "")
    contained = [r for r in response.get("contained", []) if r.get("resourceType") == "Questionnaire"]
    adapted = next((q for q in contained if reference == f"#{q.get('id')}"), None)
    if adapted is None:
        raise invalid(
            "questionnaire must reference the contained adaptive Questionnaire",
            "QuestionnaireResponse.questionnaire",
        )
    derived = [split_canonical(c)[0] for c in adapted.get("derivedFrom", [])]
    if HOME_OXYGEN_ADAPTIVE not in derived:
        raise invalid(
            f"no adaptive form is known for derivedFrom {adapted.get('derivedFrom')}",
            "Questionnaire.derivedFrom",
        )
    if response.get("status") == "completed":
        return response
    asked = {item["linkId"]: item for item in _flatten(adapted.get("item", []))}
    values: dict[str, list[Any]] = {}
    for item in _flatten(response.get("item", [])):
        if item.get("linkId") not in asked:
            raise invalid(
                f"answer to {item.get('linkId')!r}, which the form never asked", "QuestionnaireResponse.item"
            )
        given = [_answer_value(a) for a in item.get("answer", [])]
        if given and asked[item["linkId"]].get("type") not in ("group", "display"):
            values[item["linkId"]] = given
    answers = _Answers(values)
    items: list[Resource] = adapted.setdefault("item", [])
    missing = _unanswered(items, answers)
    if missing:
        raise invalid(
            f"required questions are unanswered: {', '.join(missing)}", "QuestionnaireResponse.item"
        )

    # A session launched from a pended PAS request never issues a PA number (spec-42).
    offer_pa = not any(
        e.get("url") == PAS_TRIGGERED and e.get("valueBoolean") for e in adapted.get("extension", [])
    )
    bank = _bank(catalog)
    for step in STEPS if offer_pa else STEPS[:-1]:
        new = [item for item in step(bank, answers) if item["linkId"] not in asked]
        if new:
            items.extend(new)
            return response

    satisfied = _criteria_met(answers)
    pa_id = (
        f"{PA_NUMBER_PREFIX}{new_id()}"
        if offer_pa and satisfied and answers.first(PA_QUESTION) is True
        else None
    )
    response["status"] = "completed"
    response["authored"] = now.isoformat()
    response.setdefault("extension", []).append(
        _coverage_information(response, satisfied, pa_id, now=now, assertion_id=new_id())
    )
    return response
