"""The ``$validate`` operation's input and output, independent of HTTP.

Spec: https://hl7.org/fhir/R4/resource-operation-validate.html. In: a ``Parameters`` with ``resource``
(Resource), optional ``profile`` (uri) and ``mode`` (create | update | delete | profile), or the bare
resource itself; out: an OperationOutcome. The route in ``server/`` only passes the parsed body, the type from
the URL and the ``profile`` query parameter.
"""

from __future__ import annotations

from typing import Any

from igs.outcome import Failure, OperationOutcomeError, invalid, operation_outcome
from igs.packages import Package
from igs.validator import Validator

MODES = ("create", "update", "delete", "profile")


def validate_operation(
    validator: Validator,
    body: Any,
    resource_type: str | None = None,
    profile: str | None = None,
    package: Package | None = None,
) -> dict[str, Any]:
    """Run ``$validate`` on a request body: INVALID for a malformed request, never for an invalid resource."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise invalid("The $validate body must be a FHIR resource or a Parameters resource")
    resource: Any = body
    mode: str | None = None
    if body["resourceType"] == "Parameters" and resource_type != "Parameters":
        resource = None
        parameters = body.get("parameter") or []
        if not isinstance(parameters, list):
            raise invalid("Parameters.parameter must be an array", "Parameters.parameter")
        for parameter in parameters:
            if not isinstance(parameter, dict):
                raise invalid("Parameters.parameter must be objects", "Parameters.parameter")
            name = parameter.get("name")
            if name == "resource":
                resource = parameter.get("resource")
            elif name == "profile":
                profile = parameter.get("valueUri") or parameter.get("valueCanonical") or profile
            elif name == "mode":
                mode = parameter.get("valueCode")
        if mode is not None and (not isinstance(mode, str) or mode not in MODES):
            raise invalid(f"Unknown $validate mode '{mode}'", "Parameters.parameter")
        if resource is None:
            if mode == "delete":
                return operation_outcome(())
            raise invalid("The $validate Parameters has no 'resource' parameter", "Parameters.parameter")
    if not isinstance(resource, dict):
        raise invalid("The resource to validate must be a JSON object")
    if profile is not None and not isinstance(profile, str):
        raise invalid("The $validate profile must be a canonical URL", "Parameters.parameter")
    if resource_type is not None and resource.get("resourceType") != resource_type:
        raise OperationOutcomeError.of(
            Failure.INVALID,
            f"$validate on {resource_type} received a {resource.get('resourceType')}",
            code="invalid",
        )
    return validator.outcome(resource, profile, package=package)
