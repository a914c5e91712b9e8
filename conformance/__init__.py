"""Black-box conformance suites: they speak HTTP to any base URL and cite IG requirement ids.

Run them with ``python -m conformance --base-url http://127.0.0.1:8080``.
"""

from conformance.framework import Check, CheckFailed, CheckResult, Outcome, Suite, Target, run_suites
from conformance.suites import SUITES

__all__ = ["SUITES", "Check", "CheckFailed", "CheckResult", "Outcome", "Suite", "Target", "run_suites"]
