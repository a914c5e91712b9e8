"""DTR (Da Vinci Documentation Templates and Rules) content and payer operations, as pure functions.

The server wires these to `Questionnaire/$questionnaire-package`, `Questionnaire/$next-question`,
`Questionnaire/$log-questionnaire-errors` and `ValueSet/$expand`.
"""

from questionnaires.adaptive import HOME_OXYGEN_ADAPTIVE, next_question
from questionnaires.canonicals import (
    BASE,
    CONTENT_VERSION,
    DTR_VERSIONS,
    DtrVersion,
    package_bundle_parameter,
)
from questionnaires.catalog import Catalog, load_catalog
from questionnaires.errors_log import QuestionnaireErrorReport, log_questionnaire_errors
from questionnaires.package import PackageRequest, parse_package_request, questionnaire_package
from questionnaires.responses import ResponseLinks, response_links
from questionnaires.valuesets import expand_valueset

__all__ = [
    "BASE",
    "CONTENT_VERSION",
    "DTR_VERSIONS",
    "HOME_OXYGEN_ADAPTIVE",
    "Catalog",
    "DtrVersion",
    "PackageRequest",
    "QuestionnaireErrorReport",
    "ResponseLinks",
    "expand_valueset",
    "load_catalog",
    "log_questionnaire_errors",
    "next_question",
    "package_bundle_parameter",
    "parse_package_request",
    "questionnaire_package",
    "response_links",
]
