"""Rendering and checking the CRD coverage-information extension, version by version.

CRD 2.2 §Coverage Information / StructureDefinition ext-coverage-information (and its 2.0.1 form):
2.0.1 codes live on ``CodeSystem/temp`` with no ``indeterminate``, ``patient`` or ``detail-code``,
``doc-needed`` is 0..1 (``both`` for clinical+admin), ``detail`` has no ``category`` and there is no
``expiry-date``. 2.2 codes live on ``CodeSystem/coverage-information-codes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import Any

from .coverage import CoverageDecision
from .policy import Reason
from .urls import CS_CRD_TEMP, EXT_COVERAGE_INFORMATION
from .versions import CrdVersion

# Allowed codes per sub-extension and version (the IG value sets).
ALLOWED: Mapping[CrdVersion, Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        CrdVersion.V2_0: {
            "covered": frozenset({"covered", "not-covered", "conditional"}),
            "pa-needed": frozenset({"no-auth", "auth-needed", "satisfied", "performpa", "conditional"}),
            "doc-needed": frozenset({"clinical", "admin", "both", "conditional"}),
            "doc-purpose": frozenset({"withpa", "withclaim", "withorder", "retain-doc", "OTH"}),
            "info-needed": frozenset({"performer", "location", "timeframe", "contract-window", "OTH"}),
        },
        CrdVersion.V2_2: {
            "covered": frozenset({"covered", "not-covered", "conditional", "indeterminate"}),
            "pa-needed": frozenset(
                {"no-auth", "auth-needed", "satisfied", "performpa", "conditional", "indeterminate"}
            ),
            "doc-needed": frozenset({"clinical", "admin", "patient", "conditional", "indeterminate"}),
            "doc-purpose": frozenset({"withpa", "withclaim", "withorder", "retain-doc", "OTH"}),
            "info-needed": frozenset(
                {"performer", "location", "timeframe", "contract-window", "detail-code", "OTH"}
            ),
        },
    }
)
ASSERTION_REASONS: Mapping[CrdVersion, frozenset[str]] = MappingProxyType(
    {
        CrdVersion.V2_0: frozenset({"gold-card", "detail-code"}),
        CrdVersion.V2_2: frozenset(
            {
                "gold-card",
                "no-member-found",
                "no-active-coverage",
                "coverage-not-found",
                "auth-out-network",
                "technical",
            }
        ),
    }
)
_ORDER = (
    "coverage",
    "covered",
    "pa-needed",
    "doc-needed",
    "doc-purpose",
    "info-needed",
    "billingCode",
    "reason",
    "detail",
    "dependency",
    "questionnaire",
    "date",
    "coverage-assertion-id",
    "satisfied-pa-id",
    "contact",
    "expiry-date",
)


def _down(value: str, version: CrdVersion) -> str:
    """2.0.1 has no `indeterminate`: the closest honest answer there is `conditional`."""
    return "conditional" if version is CrdVersion.V2_0 and value == "indeterminate" else value


def _doc_needed(values: Sequence[str], version: CrdVersion) -> list[str]:
    if version is CrdVersion.V2_2:
        return list(values)
    mapped = {"patient": "clinical", "indeterminate": "conditional"}
    codes = list(dict.fromkeys(mapped.get(v, v) for v in values))
    if "conditional" in codes:  # one value only in 2.0.1: keep the one the info-needed codes qualify
        return ["conditional"]
    if "clinical" in codes and "admin" in codes:
        return ["both"]
    return codes[:1]


def _reason(reason: Reason, version: CrdVersion) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if reason.code:
        system = reason.system or CS_CRD_TEMP
        concept["coding"] = [{"system": system, "code": reason.code}]
        in_vs = system == CS_CRD_TEMP and reason.code in ASSERTION_REASONS[version]
        if not in_vs and not reason.text:
            concept["text"] = reason.code  # q7: a code outside the value set needs text
    if reason.text:
        concept["text"] = reason.text
    return concept


def render_coverage_information(
    decision: CoverageDecision,
    *,
    version: CrdVersion,
    coverage_reference: str,
    assertion_id: str,
    on: date,
    satisfied_pa_id: str | None = None,
) -> dict[str, Any]:
    """The ext-coverage-information extension for one decision and one coverage (CRD resp-29, resp-30)."""
    subs: list[tuple[str, dict[str, Any]]] = [
        ("coverage", {"valueReference": {"reference": coverage_reference}}),
        ("covered", {"valueCode": _down(decision.covered, version)}),
    ]
    pa_needed = decision.pa_needed
    if pa_needed == "satisfied" and not satisfied_pa_id:
        pa_needed = "auth-needed"  # q5: no id to share (e.g. unsolicited determinations switched off)
    if pa_needed is not None:
        subs.append(("pa-needed", {"valueCode": _down(pa_needed, version)}))
    subs += [("doc-needed", {"valueCode": c}) for c in _doc_needed(decision.doc_needed, version)]
    subs += [("doc-purpose", {"valueCode": c}) for c in decision.doc_purpose]
    info = decision.info_needed
    if version is CrdVersion.V2_0:
        info = tuple(dict.fromkeys("OTH" if c == "detail-code" else c for c in info))
        coded = [v for url, v in subs if url in ("covered", "pa-needed", "doc-needed")]
        if any(v.get("valueCode") == "conditional" for v in coded) and not info:
            info = ("OTH",)  # `indeterminate` became `conditional`, which needs info-needed (q3)
    subs += [("info-needed", {"valueCode": c}) for c in info]
    subs += [("billingCode", {"valueCoding": code.coding()}) for code in decision.billing_codes]
    subs += [("reason", {"valueCodeableConcept": _reason(r, version)}) for r in decision.reasons]
    if version is CrdVersion.V2_2:
        for link in decision.policy_links:
            detail = [
                {"url": "category", "valueCode": "cat-other"},
                {
                    "url": "code",
                    "valueCodeableConcept": {"coding": [{"system": CS_CRD_TEMP, "code": "policy-link"}]},
                },
                {"url": "value", "valueUrl": link.url},
                {"url": "qualification", "valueString": link.label},
            ]
            subs.append(("detail", {"extension": detail}))
    subs += [("questionnaire", {"valueCanonical": q}) for q in decision.questionnaires]
    subs.append(("date", {"valueDate": on.isoformat()}))
    subs.append(("coverage-assertion-id", {"valueString": assertion_id}))
    if pa_needed == "satisfied" and satisfied_pa_id:
        subs.append(("satisfied-pa-id", {"valueString": satisfied_pa_id}))
    if version is CrdVersion.V2_2 and decision.expiry_date is not None:
        subs.append(("expiry-date", {"valueDate": decision.expiry_date.isoformat()}))
    subs.sort(key=lambda pair: _ORDER.index(pair[0]))
    return {"url": EXT_COVERAGE_INFORMATION, "extension": [{"url": url, **value} for url, value in subs]}


def with_coverage_information(resource: Mapping[str, Any], extension: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` with ``extension`` added, nothing else changed (CRD resp-37).

    A coverage-information extension already on the resource for the same coverage is replaced, so
    re-invocation does not pile up stale assertions.
    """
    # Shallow: only the top-level `extension` list is replaced; nested elements are shared, never mutated.
    out = dict(resource)
    coverage = _coverage_of(extension)
    kept = [
        ext
        for ext in out.get("extension") or []
        if not (
            isinstance(ext, Mapping)
            and ext.get("url") == EXT_COVERAGE_INFORMATION
            and _coverage_of(ext) == coverage
        )
    ]
    kept.append(dict(extension))
    if "extension" in out:
        out["extension"] = kept
        return out
    # Keep FHIR's customary member order: extension goes right after the resource's header elements.
    ordered: dict[str, Any] = {}
    placed = False
    for key, value in out.items():
        if not placed and key not in (
            "resourceType",
            "id",
            "meta",
            "implicitRules",
            "language",
            "text",
            "contained",
        ):
            ordered["extension"] = kept
            placed = True
        ordered[key] = value
    if not placed:
        ordered["extension"] = kept
    return ordered


def _coverage_of(extension: Mapping[str, Any]) -> str | None:
    for sub in extension.get("extension") or ():
        if isinstance(sub, Mapping) and sub.get("url") == "coverage":
            ref = sub.get("valueReference")
            return ref.get("reference") if isinstance(ref, Mapping) else None
    return None


def coverage_information_problems(extension: Mapping[str, Any], version: CrdVersion) -> list[str]:
    """Structural and invariant (crd-ci-q1..q9) problems of one coverage-information extension.

    Empty when valid. A stand-in until profile validation through ``igs`` is available; the service
    also accepts an injected ``ResourceValidator`` for full profile validation.
    """
    problems: list[str] = []
    if extension.get("url") != EXT_COVERAGE_INFORMATION:
        return ["not a coverage-information extension"]
    subs = [s for s in extension.get("extension") or () if isinstance(s, Mapping)]

    def values(url: str) -> list[Any]:
        out: list[Any] = []
        for sub in subs:
            if sub.get("url") == url:
                out.extend(v for k, v in sub.items() if k.startswith("value"))
        return out

    for url, lo, hi in (("coverage", 1, 1), ("covered", 1, 1), ("pa-needed", 0, 1), ("date", 1, 1)):
        n = len(values(url))
        if not lo <= n <= hi:
            problems.append(f"{url}: {n} present, expected {lo}..{hi}")
    if len(values("coverage-assertion-id")) != 1:
        problems.append("coverage-assertion-id must appear exactly once")
    if len(values("satisfied-pa-id")) > 1:
        problems.append("satisfied-pa-id must appear at most once")
    if version is CrdVersion.V2_0 and len(values("doc-needed")) > 1:
        problems.append("doc-needed is 0..1 in CRD 2.0.1")
    if version is CrdVersion.V2_0 and values("expiry-date"):
        problems.append("expiry-date does not exist in CRD 2.0.1")
    for url, allowed in ALLOWED[version].items():
        for value in values(url):
            if value not in allowed:
                problems.append(f"{url}: {value!r} is not a CRD {version.value} code")
    known = set(_ORDER) | {"response"}
    for sub in subs:
        if sub.get("url") not in known:
            problems.append(f"unknown sub-extension {sub.get('url')!r}")
        if version is CrdVersion.V2_2 and sub.get("url") == "detail":
            inner = {e.get("url") for e in sub.get("extension") or () if isinstance(e, Mapping)}
            if not {"category", "code", "value"} <= inner:
                problems.append("detail needs category, code and value in CRD 2.2")
    covered, pa, docs = values("covered"), values("pa-needed"), values("doc-needed")
    purposes, infos, reasons = values("doc-purpose"), values("info-needed"), values("reason")
    coded = [*covered, *pa, *docs]
    if values("questionnaire") and not docs:
        problems.append("q1: questionnaire requires doc-needed")
    if "not-covered" in covered and pa:
        problems.append("q2: not-covered must not carry pa-needed")
    if version is CrdVersion.V2_0 and covered and "not-covered" not in covered and not pa:
        problems.append("q2 (2.0.1): pa-needed required unless not-covered")
    if "conditional" in coded and not infos:
        problems.append("q3: conditional requires info-needed")
    if infos and "conditional" not in coded:
        problems.append("q3 (2.0.1): info-needed requires a conditional value")
    if any(p in ("satisfied", "no-auth") for p in pa) and "withpa" in purposes:
        problems.append("q4: doc-purpose withpa with pa-needed satisfied/no-auth")
    if ("satisfied" in pa) != bool(values("satisfied-pa-id")):
        problems.append("q5: satisfied-pa-id iff pa-needed = satisfied")
    if "OTH" in infos and not reasons:
        problems.append("q6: info-needed OTH requires a reason")
    for reason in reasons:
        codes = [c.get("code") for c in reason.get("coding") or () if isinstance(c, Mapping)]
        if codes and not reason.get("text") and not set(codes) <= ASSERTION_REASONS[version]:
            problems.append("q7: a reason coded outside the value set needs text")
    if any(p != "conditional" for p in purposes) and not reasons:
        problems.append("q8: doc-purpose requires a reason")
    if "indeterminate" in coded and not reasons:
        problems.append("q9: indeterminate requires a reason")
    return problems
