"""`Questionnaire/$log-questionnaire-errors` input validation (DTR 2.0.1 OperationDefinition
`log-questionnaire-errors`; 2.2.0 renamed the parameters to `questionnaire` and `operationOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass

from igs.outcome import invalid
from questionnaires.catalog import Resource
from questionnaires.shape import parameter_list

_QUESTIONNAIRE_NAMES = frozenset({"Questionnaire", "questionnaire"})
_OUTCOME_NAMES = frozenset({"OperationOutcome", "operationOutcome", "outcome"})


@dataclass(frozen=True)
class QuestionnaireErrorReport:
    """What a DTR client reported: the forms concerned and the OperationOutcomes it hit."""

    questionnaires: tuple[str, ...]
    outcomes: tuple[Resource, ...]


def log_questionnaire_errors(parameters: Resource) -> QuestionnaireErrorReport:
    """Validate a `$log-questionnaire-errors` body; both versions' parameter spellings are accepted."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("$log-questionnaire-errors expects a Parameters resource", "Parameters")
    canonicals: list[str] = []
    outcomes: list[Resource] = []
    for index, param in enumerate(parameter_list(parameters)):
        where = f"Parameters.parameter[{index}]"
        name = param.get("name") if isinstance(param, dict) else None
        if not isinstance(name, str):
            raise invalid("every parameter needs a name", where)
        if name in _QUESTIONNAIRE_NAMES:
            value = param.get("valueCanonical")
            if not isinstance(value, str) or not value:
                raise invalid("questionnaire must be a valueCanonical", where)
            canonicals.append(value)
        elif name in _OUTCOME_NAMES:
            resource = param.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
                raise invalid("operationOutcome must carry an OperationOutcome resource", where)
            if not isinstance(resource.get("issue"), list) or not resource["issue"]:
                raise invalid("the OperationOutcome needs at least one issue", where)
            outcomes.append(resource)
        else:
            raise invalid(f"unknown $log-questionnaire-errors parameter {name!r}", where)
    if not canonicals:
        raise invalid("at least one questionnaire canonical is required", "Parameters.parameter")
    if not outcomes:
        raise invalid("at least one operationOutcome is required", "Parameters.parameter")
    return QuestionnaireErrorReport(tuple(canonicals), tuple(outcomes))
