"""Payer operations use cases: staff sign-in, the work queue, a request's detail, reviewer actions and the
figures behind the dashboard and the public CMS-0057-F metrics.

Payer staff work every organization's requests: the queue, the dashboard and the metrics read the PAS
submissions of every tenant, and a request is named by its tenant and submission id (:class:`RequestFacts`
carries both). Decisions go through the :class:`PasService` of the request's tenant (``decide_review``,
``request_information``, ``extend_review``), so the submitter hears of them the way PAS says (the
ClaimResponse's new version and its subscription notification, to that organization's subscribers); each
is also recorded in the request's history and as an AuditEvent through ``audit``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cds_hooks.policy import PolicySet
from igs.outcome import Failure, OperationOutcomeError, invalid, not_found
from server import fhir_json
from server.coverage_assertions import CoverageAssertionStore, StoredAssertion
from server.pas import codec
from server.pas.decision import Decision, InfoRequest, Reviewer
from server.pas.request import PasRequest, parse_pas_request
from server.pas.review import ReviewerDecision, ReviewItem
from server.pas.service import PasService
from server.pas.versions import PasVersion
from server.security.audit import AuditRequest, AuditSource, audit_decision
from server.security.principal import Principal
from server.storage.repository import Repository

from .auth import Passwords, Permission, Role, allowed, new_token, token_hash
from .facts import RequestFacts, request_facts
from .filters import RequestFilter, by_time_left, most_recent_first, select
from .metrics import AppealResult, Cms0057Report, PaService, cms0057_report
from .store import Appeal, Event, OpsStore, PeerToPeer, Session, StaffUser, StoredRequest

Json = dict[str, Any]
log = logging.getLogger("priorgate.ops")
PARSED_CACHE_LIMIT = 200_000  # parsed requests kept per process (then the copies start again)
AuditSink = Callable[[Json], None]  # stores one AuditEvent


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member."""

    username: str
    display_name: str
    role: Role
    npi: str | None = None

    def can(self, permission: Permission) -> bool:
        return allowed(self.role.value, permission)

    def reviewer(self) -> Reviewer:
        return Reviewer(self.username, npi=self.npi, name=self.display_name)


@dataclass(frozen=True)
class Attachment:
    sequence: int
    category: str
    resource_type: str
    title: str
    detail: tuple[tuple[str, str], ...] = ()  # (question or field, answer)


@dataclass(frozen=True)
class ExchangeEntry:
    """One X12 278 message exchanged with a downstream payer for this request."""

    at: datetime
    direction: str  # outbound | inbound
    summary: str
    raw: str = ""


@dataclass(frozen=True)
class RequestDetail:
    facts: RequestFacts
    request: PasRequest
    decision: Decision
    review: ReviewItem | None
    patient: Json
    coverages: tuple[Json, ...]
    assertions: tuple[StoredAssertion, ...]
    missing_assertions: tuple[str, ...]
    questionnaire_responses: tuple[Attachment, ...]
    attachments: tuple[Attachment, ...]
    history: tuple[Event, ...]
    claim_response_versions: tuple[tuple[str, str, str], ...]  # (version id, last updated, outcome)
    peer_to_peer: PeerToPeer | None
    appeal: Appeal | None
    exchange: tuple[ExchangeEntry, ...]


def _preferred(new: ReviewItem | None, held: ReviewItem | None) -> bool:
    """Of several review rows of one submission (a re-pended update): the undecided one, else the latest."""
    if held is None or new is None:
        return held is None
    new_open, held_open = new.status.value != "decided", held.status.value != "decided"
    if new_open != held_open:
        return new_open
    return new.received_at >= held.received_at


def _forbidden(message: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.FORBIDDEN, message, code="forbidden")


def _code_label(concept: Any) -> str:
    if isinstance(concept, dict):
        if concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
                return str(coding.get("display") or coding.get("code"))
    return ""


def _answers(items: Iterable[Any], into: list[tuple[str, str]]) -> None:
    for item in items:
        if not isinstance(item, dict):
            continue
        values = []
        for answer in item.get("answer") or ():
            if not isinstance(answer, dict):
                continue
            for key, value in answer.items():
                if key.startswith("value"):
                    values.append(_code_label(value) if isinstance(value, dict) else str(value))
            _answers(answer.get("item") or (), into)
        if values:
            into.append((str(item.get("text") or item.get("linkId") or ""), ", ".join(values)))
        _answers(item.get("item") or (), into)


@dataclass(frozen=True)
class OpsService:
    pas: PasService
    store: OpsStore
    resources: Repository
    assertions: CoverageAssertionStore
    policies: PolicySet
    now: Callable[[], datetime]
    passwords: Passwords
    audit: AuditSink
    payer_name: str = "PriorGate Demo Health Plan"
    server_url: str = "urn:priorgate"
    session_lifetime: timedelta = timedelta(hours=8)
    secure_cookies: bool = False
    public_origin: str | None = None  # scheme://host[:port] of PRIORGATE_BASE_URL, accepted as Origin
    login_attempts: int = 5  # failed sign-ins in a row before the user is locked out for ``lockout``
    lockout: timedelta = timedelta(minutes=15)
    # the X12 bridge, when routed: (tenant, submission id) -> the 278s exchanged for that request
    exchange_log: Callable[[str, str], Sequence[ExchangeEntry]] | None = None
    _describe: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    # Parsed requests keyed by (tenant, submission id), with the row's ``updated`` stamp they were parsed at.
    _parsed_cache: dict[tuple[str, str], tuple[str, PasRequest, Decision]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        for payer in self.policies.payers.values():
            for rule in payer.rules:
                for code in rule.codes:
                    if code.display:
                        self._describe.setdefault((code.system, code.code), code.display)

    # -- staff sign-in ------------------------------------------------------------------------------------

    def add_user(
        self, username: str, display_name: str, role: Role, password: str, npi: str | None = None
    ) -> None:
        user = StaffUser(username, display_name, role.value, self.passwords.hash(password), npi)
        self.store.add_user(user, self.now())

    def login(self, username: str, password: str) -> tuple[str, Session] | None:
        """A new session (cookie value, session) for good credentials of an active user, else None."""
        user = self.store.user(username.strip())
        now = self.now()
        locked = self.store.locked_until(user.username) if user is not None else None
        ok = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not user.active:
            return None
        if locked is not None and locked > now:
            return None  # locked after repeated failures: even the right password waits
        self.store.record_login(user.username, ok, now=now, limit=self.login_attempts, lock_for=self.lockout)
        if not ok:
            return None
        if self.passwords.needs_rehash(user.password_hash):
            self.store.set_password_hash(user.username, self.passwords.hash(password))
        token, csrf = new_token(), new_token()
        expires = now + self.session_lifetime
        self.store.add_session(token_hash(token), user.username, csrf, now, expires)
        return token, Session(user.username, csrf, expires)

    def signed_in(self, token: str | None) -> tuple[Staff, Session] | None:
        if not token:
            return None
        session = self.store.session(token_hash(token), self.now())
        if session is None:
            return None
        user = self.store.user(session.username)
        if user is None or not user.active:
            return None
        try:
            role = Role(user.role)
        except ValueError:
            return None
        return Staff(user.username, user.display_name, role, user.npi), session

    def logout(self, token: str | None) -> None:
        if token:
            self.store.end_session(token_hash(token))

    def staff(self) -> list[StaffUser]:
        return self.store.users()

    # -- reading ------------------------------------------------------------------------------------------

    def _describe_code(self, system: str | None, code: str) -> str | None:
        return self._describe.get((system or "", code))

    def _parsed(self, rows: Sequence[StoredRequest]) -> dict[tuple[str, str], tuple[PasRequest, Decision]]:
        """Parsed request and decision per (tenant, submission), reusing copies whose row has not changed."""
        cache = self._parsed_cache
        missing = [
            (r.tenant, r.submission_id)
            for r in rows
            if cache.get((r.tenant, r.submission_id), ("",))[0] != r.updated
        ]
        if missing:
            if len(cache) > PARSED_CACHE_LIMIT:
                cache.clear()
            versions = {(r.tenant, r.submission_id): PasVersion(r.version) for r in rows}
            for key, (updated, raw_request, raw_decision) in self.store.bodies(missing).items():
                try:
                    request = parse_pas_request(fhir_json.loads(raw_request), versions[key])
                    decision = codec.loads(Decision, raw_decision)
                except (OperationOutcomeError, ValueError, TypeError, KeyError) as exc:
                    # one unreadable row must not take the queue, dashboard or metrics down with it
                    log.warning("stored PAS request %s (tenant %r) cannot be read: %s", key[1], key[0], exc)
                    continue
                cache[key] = (updated, request, decision)
        out = {}
        for row in rows:
            key = (row.tenant, row.submission_id)
            held = cache.get(key)
            if held is not None:
                out[key] = (held[1], held[2])
        return out

    def facts(
        self, *, open_only: bool = False, submission_id: str | None = None, tenant: str | None = None
    ) -> list[RequestFacts]:
        """The facts of every tenant's stored requests (or of one ``tenant``; or one ``submission_id``)."""
        appeals = self.store.appeals()
        chosen: dict[tuple[str, str], tuple[StoredRequest, ReviewItem | None]] = {}
        for row in self.store.requests(open_only=open_only, submission_id=submission_id, tenant=tenant):
            review = codec.loads(ReviewItem, row.review_record) if row.review_record else None
            key = (row.tenant, row.submission_id)
            held = chosen.get(key)
            if held is not None and not _preferred(review, held[1]):
                continue
            chosen[key] = (row, review)
        parsed = self._parsed([row for row, _ in chosen.values()])
        out = []
        for key, (row, review) in chosen.items():
            if key not in parsed:
                continue  # written between the two reads; the next page load shows it
            request, decision = parsed[key]
            appeal = appeals.get(key)
            out.append(
                request_facts(
                    row.submission_id,
                    request,
                    decision,
                    received_at=datetime.fromisoformat(row.created),
                    review=review,
                    assignee=row.assignee,
                    describe=self._describe_code,
                    appeal=AppealResult(appeal.status) if appeal else None,
                    appeal_decided_at=appeal.decided_at if appeal else None,
                    tenant=row.tenant,
                )
            )
        return out

    def pas_for(self, tenant: str) -> PasService:
        """The PAS service acting in ``tenant`` (the submitter organization a request belongs to)."""
        return self.pas if tenant == self.pas.store.tenant else self.pas.for_tenant(tenant)

    def locate(self, submission_id: str, tenant: str | None = None) -> RequestFacts:
        """The request ``submission_id`` (in ``tenant`` when given); 404 when none, 409 when several
        tenants hold that id and none was named."""
        found = self.facts(submission_id=submission_id, tenant=tenant)
        if not found:
            raise not_found(f"No request {submission_id!r}")
        if len(found) > 1:
            raise OperationOutcomeError.of(
                Failure.CONFLICT,
                f"Several organizations hold a request {submission_id!r}; name one with ?tenant=",
            )
        return found[0]

    def queue(self, wanted: RequestFilter | None = None) -> list[RequestFacts]:
        """Open requests matching ``wanted``, least time left to the deadline first."""
        return by_time_left(select(self.facts(open_only=True), wanted or RequestFilter(), self.now()))

    def requests(self, wanted: RequestFilter) -> list[RequestFacts]:
        """Any requests matching ``wanted`` (the dashboard's drill-down), most recent first."""
        return most_recent_first(select(self.facts(), wanted, self.now()))

    def detail(self, submission_id: str, tenant: str | None = None) -> RequestDetail:
        facts = self.locate(submission_id, tenant)
        pas = self.pas_for(facts.tenant)
        record = pas.store.get(submission_id)
        if record is None:
            raise not_found(f"No request {submission_id!r}")
        request = record.stored.request
        entry = pas.store.review(facts.review_id) if facts.review_id else None
        review = entry.item if entry is not None else None
        patient = self._resource(request, request.patient.full_url)
        coverages = tuple(self._resource(request, c.full_url) for c in request.coverages)
        assertion_ids = list(
            dict.fromkeys(
                [a for i in request.items for a in i.coverage_assertion_ids]
                + [a for s in request.supporting_info for a in s.coverage_assertion_ids]
            )
        )
        assertions, missing = [], []
        for assertion_id in assertion_ids:
            stored = self.assertions.find(assertion_id)
            if stored is None:
                missing.append(assertion_id)
            else:
                assertions.append(stored)
        responses, attachments = [], []
        for info in request.supporting_info:
            resource = self._resource(request, info.target.full_url) if info.target else {}
            category = (info.category.display or info.category.code) if info.category else ""
            kind = str(resource.get("resourceType") or (info.target.resource_type if info.target else ""))
            if kind == "QuestionnaireResponse":
                answers: list[tuple[str, str]] = []
                _answers(resource.get("item") or (), answers)
                title = str(resource.get("questionnaire") or "QuestionnaireResponse")
                responses.append(Attachment(info.sequence, category, kind, title, tuple(answers)))
            else:
                title = str(
                    resource.get("description")
                    or _code_label(resource.get("type"))
                    or (info.report_type.display or info.report_type.code if info.report_type else "")
                    or kind
                )
                detail = tuple(
                    (
                        str(c.get("attachment", {}).get("contentType", "")),
                        str(c.get("attachment", {}).get("title", "")),
                    )
                    for c in resource.get("content") or ()
                    if isinstance(c, dict)
                )
                attachments.append(
                    Attachment(info.sequence, category, kind or "(not included)", title, detail)
                )
        versions = []
        try:
            resources = self.resources.for_tenant(facts.tenant)
            for version in resources.history("ClaimResponse", record.stored.claim_response_id):
                body = version.resource() if not version.deleted else {}
                versions.append((str(version.version_id), version.last_updated, str(body.get("outcome", ""))))
        except OperationOutcomeError:
            versions = []
        appeal = self.store.appeals().get((facts.tenant, submission_id))
        return RequestDetail(
            facts=facts,
            request=request,
            decision=record.stored.decision,
            review=review,
            patient=patient,
            coverages=coverages,
            assertions=tuple(assertions),
            missing_assertions=tuple(missing),
            questionnaire_responses=tuple(responses),
            attachments=tuple(attachments),
            history=tuple(self.store.events(facts.tenant, submission_id)),
            claim_response_versions=tuple(versions),
            peer_to_peer=self.store.peer_to_peer(facts.tenant, facts.review_id) if facts.review_id else None,
            appeal=appeal,
            exchange=(
                tuple(self.exchange_log(facts.tenant, submission_id)) if self.exchange_log is not None else ()
            ),
        )

    @staticmethod
    def _resource(request: PasRequest, full_url: str | None) -> Json:
        entry = request.index.resolve(full_url) if full_url else None
        return dict(entry.resource) if entry is not None else {}

    # -- reviewer actions ---------------------------------------------------------------------------------

    def _open(self, submission_id: str, tenant: str | None) -> RequestFacts:
        facts = self.locate(submission_id, tenant)
        if not facts.is_open or facts.review_id is None:
            raise OperationOutcomeError.of(
                Failure.CONFLICT, f"Request {submission_id!r} is not open for review"
            )
        return facts

    def decide(
        self,
        staff: Staff,
        submission_id: str,
        decisions: Sequence[ReviewerDecision],
        tenant: str | None = None,
    ) -> Json:
        """Approve, modify or deny pended items. Only a clinician reviewer may deny."""
        if not staff.can(Permission.DECIDE):
            raise _forbidden(f"The {staff.role.label.lower()} role cannot decide requests")
        facts = self._open(submission_id, tenant)
        if not decisions:
            raise invalid("Choose a decision for at least one pended item")
        if any(d.action.value == "deny" for d in decisions) and not staff.can(Permission.DENY):
            raise _forbidden("Only a clinician reviewer can deny a request")
        assert facts.review_id is not None
        pas = self.pas_for(facts.tenant)
        response = pas.decide_review(facts.review_id, decisions, staff.reviewer())
        now = self.now()
        if facts.assignee is None:
            self.store.assign(facts.tenant, facts.review_id, staff.username)
        detail = {
            "items": [
                {
                    "sequence": d.item_sequence,
                    "action": d.action.value,
                    "reasonCode": d.reason_code.code if d.reason_code else None,
                    "reasonText": d.reason_text,
                    "authorized": d.modification.product.code if d.modification else None,
                }
                for d in decisions
            ]
        }
        self.store.add_event(
            facts.tenant, submission_id, facts.review_id, now, staff.username, "decision", detail
        )
        self._audit_decision(staff, pas, submission_id, now)
        return response

    def _audit_decision(self, staff: Staff, pas: PasService, submission_id: str, now: datetime) -> None:
        record = pas.store.get(submission_id)
        if record is None:
            return
        actions = ",".join(dict.fromkeys(i.action.value for i in record.stored.decision.items))
        principal = Principal(
            client_id=f"staff/{staff.username}",
            tenants=frozenset(),
            scopes=(),
            roles=frozenset({staff.role.value}),
            kind="user",
            subject=staff.username,
        )
        patient_id = record.stored.request.patient.full_url
        event = audit_decision(
            f"Claim/{submission_id}",
            f"ClaimResponse/{record.stored.claim_response_id}",
            actions,
            request=AuditRequest(principal),
            source=AuditSource(self.server_url),
            recorded=now,
            patients=(patient_id,) if patient_id and not patient_id.startswith("urn:") else (),
        )
        self.audit(event)

    def request_information(
        self,
        staff: Staff,
        submission_id: str,
        text: str,
        loinc: str,
        due: date | None,
        tenant: str | None = None,
    ) -> Json:
        if not staff.can(Permission.DECIDE):
            raise _forbidden(f"The {staff.role.label.lower()} role cannot ask for information")
        if not text.strip():
            raise invalid("Say what information is needed", "text")
        facts = self._open(submission_id, tenant)
        assert facts.review_id is not None
        note = text.strip() + (f" (needed by {due.isoformat()})" if due else "")
        requests = [InfoRequest(None, loinc or "11506-3", text=note)]
        pas = self.pas_for(facts.tenant)
        response = pas.request_information(facts.review_id, requests, staff.reviewer())
        now = self.now()
        detail = {"text": text.strip(), "loinc": loinc or "11506-3", "due": due.isoformat() if due else None}
        self.store.add_event(
            facts.tenant, submission_id, facts.review_id, now, staff.username, "information-requested", detail
        )
        self._audit_decision(staff, pas, submission_id, now)
        return response

    def extend(
        self, staff: Staff, submission_id: str, hours: int, reason: str, tenant: str | None = None
    ) -> ReviewItem:
        if not staff.can(Permission.DECIDE):
            raise _forbidden(f"The {staff.role.label.lower()} role cannot extend a review")
        if hours <= 0 or hours > 24 * 14:
            raise invalid("An extension is between 1 hour and 14 days", "hours")
        facts = self._open(submission_id, tenant)
        assert facts.review_id is not None
        pas = self.pas_for(facts.tenant)
        item = pas.extend_review(facts.review_id, timedelta(hours=hours), reason, staff.username)
        detail = {"hours": hours, "reason": reason.strip(), "dueAt": item.due_at.isoformat()}
        self.store.add_event(
            facts.tenant, submission_id, facts.review_id, self.now(), staff.username, "extension", detail
        )
        return item

    def assign(
        self, staff: Staff, submission_id: str, username: str | None, tenant: str | None = None
    ) -> None:
        target = username or None
        if target != staff.username and not staff.can(Permission.ASSIGN):
            raise _forbidden("Only a manager or administrator can assign requests to others")
        if target == staff.username and not (staff.can(Permission.TAKE) or staff.can(Permission.ASSIGN)):
            raise _forbidden("This role cannot take requests")
        if target is not None:
            user = self.store.user(target)
            if user is None or not user.active or not allowed(user.role, Permission.DECIDE):
                raise invalid(f"{target!r} is not an active reviewer", "assignee")
        facts = self._open(submission_id, tenant)
        assert facts.review_id is not None
        self.store.assign(facts.tenant, facts.review_id, target)
        self.store.add_event(
            facts.tenant,
            submission_id,
            facts.review_id,
            self.now(),
            staff.username,
            "assignment",
            {"assignee": target},
        )

    def peer_to_peer(
        self,
        staff: Staff,
        submission_id: str,
        status: str,
        scheduled_for: str | None,
        notes: str,
        tenant: str | None = None,
    ) -> None:
        if not staff.can(Permission.DECIDE):
            raise _forbidden(f"The {staff.role.label.lower()} role cannot arrange a peer-to-peer")
        if status not in ("requested", "scheduled", "completed"):
            raise invalid("Peer-to-peer status is requested, scheduled or completed", "status")
        if status == "scheduled" and not scheduled_for:
            raise invalid("A scheduled peer-to-peer needs a date and time", "scheduled_for")
        facts = self._open(submission_id, tenant)
        assert facts.review_id is not None
        now = self.now()
        self.store.set_peer_to_peer(
            facts.tenant,
            facts.review_id,
            PeerToPeer(status, scheduled_for or None, notes.strip(), staff.username, now),
        )
        detail = {"status": status, "scheduledFor": scheduled_for or None, "notes": notes.strip()}
        self.store.add_event(
            facts.tenant, submission_id, facts.review_id, now, staff.username, "peer-to-peer", detail
        )

    def appeal(
        self, staff: Staff, submission_id: str, status: str, notes: str, tenant: str | None = None
    ) -> None:
        """Record an appeal of a denial (``pending``) and its outcome (``approved`` or ``upheld``)."""
        if not staff.can(Permission.APPEAL):
            raise _forbidden("Only a clinician reviewer or a manager can record appeals")
        try:
            result = AppealResult(status)
        except ValueError:
            raise invalid("Appeal status is pending, approved or upheld", "status") from None
        facts = self.locate(submission_id, tenant)
        if not facts.denial_reasons:
            raise OperationOutcomeError.of(
                Failure.CONFLICT, "Only a request with a denied item can be appealed"
            )
        now = self.now()
        prior = self.store.appeals().get((facts.tenant, submission_id))
        received = prior.received_at if prior else now
        decided = None if result is AppealResult.PENDING else now
        self.store.set_appeal(
            facts.tenant,
            submission_id,
            Appeal(result.value, received, decided, notes.strip(), staff.username),
        )
        self.store.add_event(
            facts.tenant,
            submission_id,
            facts.review_id,
            now,
            staff.username,
            "appeal",
            {"status": result.value, "notes": notes},
        )

    # -- metrics ------------------------------------------------------------------------------------------

    def pa_services(self, year: int) -> list[PaService]:
        """Rules in effect some time in ``year`` whose default answer is ``auth-needed``."""
        first, last = date(year, 1, 1), date(year, 12, 31)
        out = []
        for payer in self.policies.payers.values():
            for rule in payer.rules:
                if rule.default.pa_needed != "auth-needed":
                    continue
                if rule.effective_start > last or (
                    rule.effective_end is not None and rule.effective_end < first
                ):
                    continue
                codes = tuple((c.system, c.code, c.display or c.code) for c in rule.codes)
                out.append(PaService(rule.id, rule.title, codes))
        return out

    def rules(self) -> list[tuple[str, str, date, int, tuple[str, ...]]]:
        """Coverage rules: (id, title, last reviewed, review every N days, procedure codes)."""
        return [
            (r.id, r.title, r.last_reviewed, r.review_every_days, tuple(c.code for c in r.codes))
            for payer in self.policies.payers.values()
            for r in payer.rules
        ]

    def cms_report(self, year: int) -> Cms0057Report:
        return cms0057_report((f.record() for f in self.facts()), year, self.pa_services(year))
