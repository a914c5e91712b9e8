"""Coverage rules as data: the schema of `cds_hooks/policies/*.toml` and its loader.

Each file holds one payer (identifier in ``SID_PAYER_ID``) with its rules. A rule applies to codes with
full system URIs, optionally to some plans, during an effective period; it has a default outcome and
ordered cases whose conditions (diagnosis, age, gender, place of service, quantity, frequency, prior
therapy, FHIRPath) override it. Files are validated when loaded; a broken file raises an
``OperationOutcomeError`` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from igs.outcome import Failure, Issue, OperationOutcomeError

from .urls import HCPCS_ALIASES

Covered = Literal["covered", "not-covered", "conditional", "indeterminate"]
PaNeeded = Literal["no-auth", "auth-needed", "satisfied", "performpa", "conditional", "indeterminate"]
DocNeeded = Literal["clinical", "admin", "patient", "conditional", "indeterminate"]
DocPurpose = Literal["withpa", "withclaim", "withorder", "retain-doc", "OTH"]
InfoNeeded = Literal["performer", "location", "timeframe", "contract-window", "detail-code", "OTH"]
Gender = Literal["male", "female", "other", "unknown"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Strict):
    """A code with its full system URI (CRD requires systems, never bare codes)."""

    system: Annotated[str, Field(pattern=r"^(https?|urn):")]
    code: Annotated[str, Field(min_length=1)]
    display: str | None = None

    def coding(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


class Reason(_Strict):
    """A coverage-assertion reason: a coded reason or text (q7: codes outside the value set need text)."""

    code: str | None = None
    system: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _code_or_text(self) -> Reason:
        if not self.code and not self.text:
            raise ValueError("a reason needs a code or a text")
        return self


class Link(_Strict):
    label: Annotated[str, Field(min_length=1, max_length=120)]
    url: Annotated[str, Field(pattern=r"^https?://")]


class Alternate(_Strict):
    """Propose Alternate Request: replace the order's code when it is one of ``replaces``."""

    replaces: Annotated[list[Code], Field(min_length=1)]
    code: Code
    summary: Annotated[str, Field(min_length=1, max_length=139)]
    detail: str | None = None


class Companion(_Strict):
    """Identify Additional Orders: a companion order to create alongside the rule's service."""

    resource_type: Literal["DeviceRequest", "ServiceRequest", "MedicationRequest", "CommunicationRequest"]
    code: Code


class Outcome(_Strict):
    """What a rule says about an order (every field optional so cases can override a default)."""

    covered: Covered | None = None
    pa_needed: PaNeeded | None = None
    doc_needed: list[DocNeeded] | None = None
    doc_purpose: list[DocPurpose] | None = None
    info_needed: list[InfoNeeded] | None = None
    billing_codes: list[Code] | None = None
    reasons: list[Reason] | None = None
    questionnaires: list[Annotated[str, Field(pattern=r"^https?://\S+$")]] | None = None
    policy_links: list[Link] | None = None
    instructions: Annotated[str, Field(max_length=2000)] | None = None
    expiry_days: Annotated[int, Field(ge=1)] | None = None


class Frequency(_Strict):
    """At most ``max_occurrences`` within ``period_days`` (read from the order's timing)."""

    max_occurrences: Annotated[int, Field(ge=1)]
    period_days: Annotated[int, Field(ge=1)]


class Conditions(_Strict):
    """All given conditions must hold (logical AND); each list is an any-of."""

    diagnosis: list[Code] | None = None
    diagnosis_prefixes: list[Code] | None = None  # ICD-10-CM category prefixes, e.g. K50
    age_min: Annotated[int, Field(ge=0, le=150)] | None = None
    age_max: Annotated[int, Field(ge=0, le=150)] | None = None
    gender: list[Gender] | None = None
    place_of_service: list[Code] | None = None
    quantity_max: Annotated[float, Field(gt=0)] | None = None
    frequency: Frequency | None = None
    prior_therapy: list[Code] | None = None
    fhirpath: Annotated[str, Field(min_length=1)] | None = None


class Case(_Strict):
    name: Annotated[str, Field(min_length=1)]
    when: Conditions
    then: Outcome


class Rule(_Strict):
    """One coverage rule: codes, plans, effective period, review date, default outcome, cases."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    topic: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    title: Annotated[str, Field(min_length=1, max_length=100)]
    codes: Annotated[list[Code], Field(min_length=1)]
    plans: list[str] | None = None  # None: every plan of the payer
    effective_start: date
    effective_end: date | None = None
    last_reviewed: date
    review_every_days: Annotated[int, Field(ge=1)] = 365
    default: Outcome
    cases: list[Case] = []
    alternate: Alternate | None = None
    companions: list[Companion] = []
    gold_carded_npis: list[Annotated[str, Field(pattern=r"^\d{10}$")]] = []

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        if self.default.covered is None:
            raise ValueError("default.covered is required")
        if self.effective_end is not None and self.effective_end < self.effective_start:
            raise ValueError("effective_end is before effective_start")
        return self


class PayerFile(_Strict):
    """The schema of one ``cds_hooks/policies/*.toml`` file."""

    payer_id: Annotated[str, Field(min_length=1)]
    payer_name: Annotated[str, Field(min_length=1, max_length=100)]
    # Answer for codes no rule names (e.g. covered, no-auth: the payer only lists what needs review).
    unlisted: Outcome
    rules: list[Rule] = []


@dataclass(frozen=True)
class Payer:
    """One validated payer file."""

    id: str
    name: str
    unlisted: Outcome
    rules: tuple[Rule, ...]
    source: str


def _system_key(system: str) -> str:
    return "hcpcs" if system in HCPCS_ALIASES else system


@dataclass(frozen=True)
class PolicySet:
    """All payers' rules, indexed by (payer, system, code). Immutable once loaded."""

    payers: Mapping[str, Payer]
    _index: Mapping[tuple[str, str, str], tuple[Rule, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, payers: Iterable[Payer]) -> PolicySet:
        by_id: dict[str, Payer] = {}
        index: dict[tuple[str, str, str], list[Rule]] = {}
        for payer in payers:
            if payer.id in by_id:
                raise _load_error(payer.source, "payer_id", f"payer {payer.id!r} is defined twice")
            by_id[payer.id] = payer
            for rule in payer.rules:
                for code in rule.codes:
                    index.setdefault((payer.id, _system_key(code.system), code.code), []).append(rule)
        return cls(by_id, {key: tuple(rules) for key, rules in index.items()})

    def rules_for(self, payer_id: str, system: str, code: str) -> tuple[Rule, ...]:
        return self._index.get((payer_id, _system_key(system), code), ())

    def stale_rules(self, today: date) -> list[tuple[str, str]]:
        """(payer id, rule id) of every rule past its review date, for logs and metrics."""
        return [
            (payer.id, rule.id)
            for payer in self.payers.values()
            for rule in payer.rules
            if is_stale(rule, today)
        ]


def is_stale(rule: Rule, today: date) -> bool:
    """A rule past ``last_reviewed + review_every_days`` still answers but is flagged."""
    return today > rule.last_reviewed + timedelta(days=rule.review_every_days)


def _load_error(source: str, location: str, message: str) -> OperationOutcomeError:
    return OperationOutcomeError(
        Failure.UNAVAILABLE,
        (Issue(diagnostics=f"{source}: {location}: {message}", code="invalid", expression=(location,)),),
    )


def parse_payer_file(data: Mapping[str, Any], source: str) -> Payer:
    """Validate one payer's rules (already parsed from TOML or JSON)."""
    try:
        parsed = PayerFile.model_validate(data)
    except ValidationError as exc:
        issues = tuple(
            Issue(
                diagnostics=f"{source}: {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}",
                code="invalid",
                expression=(".".join(str(p) for p in err["loc"]),),
            )
            for err in exc.errors()
        )
        raise OperationOutcomeError(Failure.UNAVAILABLE, issues) from exc
    seen: set[str] = set()
    for i, rule in enumerate(parsed.rules):
        if rule.id in seen:
            raise _load_error(source, f"rules.{i}.id", f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)
    return Payer(parsed.payer_id, parsed.payer_name, parsed.unlisted, tuple(parsed.rules), source)


def load_policies(directory: Path) -> PolicySet:
    """Load and validate every ``*.toml`` payer file in ``directory`` (a broken file stops startup)."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise _load_error(str(directory), "(directory)", "no *.toml policy files found")
    payers = []
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise _load_error(str(path), "(syntax)", str(exc)) from exc
        payers.append(parse_payer_file(data, str(path)))
    return PolicySet.of(payers)
