"""IG packages, profile validation and the shared OperationOutcome error currency (the bottom layer).

Typical use: ``registry = load_registry()`` once at startup (log ``registry.warnings``), then one
``Validator(registry)`` per process: ``validator.validate(resource, profile=None) -> list[Issue]`` or
``validator.outcome(resource, profile)`` for ``$validate``.
"""

from igs.install import InstallResult, install
from igs.manifest import Manifest, ManifestEntry, load_manifest
from igs.operation import validate_operation
from igs.outcome import Failure, Issue, OperationOutcomeError, operation_outcome
from igs.packages import Package
from igs.registry import IG_PATH_ENV, PackageWarning, Registry, load_registry
from igs.suppressions import Suppression, load_suppressions
from igs.terminology import Expansion, Terminology
from igs.validator import Finding, Validator, Visit

__all__ = [
    "IG_PATH_ENV",
    "Expansion",
    "Failure",
    "Finding",
    "InstallResult",
    "Issue",
    "Manifest",
    "ManifestEntry",
    "OperationOutcomeError",
    "Package",
    "PackageWarning",
    "Registry",
    "Suppression",
    "Terminology",
    "Validator",
    "Visit",
    "install",
    "load_manifest",
    "load_registry",
    "load_suppressions",
    "operation_outcome",
    "validate_operation",
]
