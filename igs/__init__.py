"""IG packages, profile validation and the shared OperationOutcome error currency (the bottom layer)."""

from igs.manifest import Manifest, ManifestEntry, load_manifest
from igs.outcome import Failure, Issue, OperationOutcomeError, operation_outcome
from igs.packages import Package
from igs.registry import IG_PATH_ENV, PackageWarning, Registry, load_registry

__all__ = [
    "IG_PATH_ENV",
    "Failure",
    "Issue",
    "Manifest",
    "ManifestEntry",
    "OperationOutcomeError",
    "Package",
    "PackageWarning",
    "Registry",
    "load_manifest",
    "load_registry",
    "operation_outcome",
]
