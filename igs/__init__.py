"""IG packages, profile validation and the shared OperationOutcome error currency (the bottom layer)."""

from igs.outcome import Failure, Issue, OperationOutcomeError, operation_outcome

__all__ = ["Failure", "Issue", "OperationOutcomeError", "operation_outcome"]
