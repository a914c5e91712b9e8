"""Running export jobs: claim one, walk the Group's members in batches, decide consent per patient, write
NDJSON files, finish; and delete what has expired. Blocking (database work): the worker runs it in a
thread, tests and benchmarks call :meth:`ExportRunner.run_once` directly.

Per batch of members: their Consents decide who is left out (each one audited), their resources are
selected (``selection.py``), full files are stored together with the lease renewal (``jobs.py``), so a
cancelled or lost job stops at the next batch without leaving files behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from igs.outcome import OperationOutcomeError
from server.consent.decision import Payer, payer_to_payer_opted_in, provider_access_opted_out
from server.consent.store import consents_by_patient
from server.security.audit_log import AuditWriter
from server.settings import Settings
from server.storage.repository import Repository, since_stamp

from .audit import consent_exclusion
from .codes import Purpose
from .compartment import patient_resources, tenants
from .content import EXPORT_TYPES, PA_TYPES
from .groups import AttributionGroup, load_group, payer_view, requesting_payer
from .jobs import Claim, JobStore, NewFile
from .selection import ExportPolicy, select_lines

log = logging.getLogger("priorgate.bulk")


@dataclass(frozen=True)
class BulkSettings:
    poll_interval: float = 1.0
    file_lifetime: timedelta = timedelta(hours=1)
    lines_per_file: int = 10000
    lease: timedelta = timedelta(seconds=120)
    batch: int = 500  # members per database round


def bulk_settings(settings: Settings) -> BulkSettings:
    """The export settings from ``PRIORGATE_BULK_EXPORT_*``."""
    return BulkSettings(
        poll_interval=settings.bulk_export_poll_interval,
        file_lifetime=timedelta(seconds=settings.bulk_export_file_lifetime),
        lines_per_file=settings.bulk_export_lines_per_file,
        lease=timedelta(seconds=settings.bulk_export_lease),
    )


@dataclass
class NdjsonFiles:
    """Lines per resource type, cut into files of at most ``limit`` lines."""

    limit: int
    _open: dict[str, list[bytes]] = field(default_factory=dict)
    _seq: dict[str, int] = field(default_factory=dict)

    def add(self, resource_type: str, line: bytes) -> None:
        self._open.setdefault(resource_type, []).append(line)

    def _cut(self, resource_type: str, lines: list[bytes]) -> NewFile:
        seq = self._seq.get(resource_type, 0) + 1
        self._seq[resource_type] = seq
        return NewFile(resource_type, seq, len(lines), b"\n".join(lines) + b"\n")

    def full(self) -> list[NewFile]:
        out: list[NewFile] = []
        for resource_type, lines in self._open.items():
            while len(lines) >= self.limit:
                out.append(self._cut(resource_type, lines[: self.limit]))
                del lines[: self.limit]
        return out

    def rest(self) -> list[NewFile]:
        out = self.full()
        for resource_type, lines in self._open.items():
            if lines:
                out.append(self._cut(resource_type, lines))
        self._open.clear()
        return out


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class ExportRunner:
    def __init__(
        self,
        jobs: JobStore,
        repository: Repository,
        now: Callable[[], datetime],
        settings: BulkSettings = BulkSettings(),
        *,
        audit: AuditWriter | None = None,
    ) -> None:
        self.jobs = jobs
        self._payer = payer_view(repository)
        self._engine = repository.engine
        self._now = now
        self._settings = settings
        self._audit = audit

    def run_once(self) -> bool:
        """Delete expired jobs, then run one waiting job to its end; False when none was waiting."""
        self.jobs.delete_expired(self._now())
        claim = self.jobs.claim(self._now(), self._settings.lease)
        if claim is None:
            return False
        try:
            self._run(claim)
        except Exception as exc:  # a broken job fails alone; the worker goes on
            log.exception("bulk export job %s failed", claim.job.job_id)
            now = self._now()
            self.jobs.finish(
                claim, now, now + self._settings.file_lifetime, f"export failed: {type(exc).__name__}"
            )
        return True

    def _excluded(
        self, group: AttributionGroup, payer: Payer | None, batch: Sequence[str], every: Sequence[str]
    ) -> dict[str, str]:
        """Patient id -> why its consent keeps it out of this export (``every``: the tenants to look in)."""
        with self._engine.connect() as connection:
            consents = consents_by_patient(connection, batch, every)
        now = self._now()
        out: dict[str, str] = {}
        for patient in batch:
            stored = consents.get(patient, [])
            if group.purpose is Purpose.PAYER_TO_PAYER:
                assert payer is not None
                if not payer_to_payer_opted_in(stored, payer, now):
                    out[patient] = f"no payer-to-payer opt-in Consent for {group.managing_entity}"
            elif provider_access_opted_out(stored, now):
                out[patient] = "provider-access opt-out Consent"
        return out

    def _record_exclusions(self, claim: Claim, group: AttributionGroup, excluded: dict[str, str]) -> None:
        if self._audit is None:
            return
        for patient, reason in excluded.items():
            event = consent_exclusion(
                group.reference,
                claim.job.job_id,
                f"Patient/{patient}",
                reason,
                client_id=claim.job.client_id,
                source=self._audit.source,
                recorded=self._now(),
            )
            self._audit.write(event)

    def _run(self, claim: Claim) -> None:
        job = claim.job
        settings = self._settings
        try:
            group = load_group(self._payer, job.group_id, self._now())
        except OperationOutcomeError as exc:
            now = self._now()
            self.jobs.finish(claim, now, now + settings.file_lifetime, exc.message)
            return
        payer = requesting_payer(self._payer, group) if group.purpose is Purpose.PAYER_TO_PAYER else None
        policy = ExportPolicy.of(group.purpose, self._now())
        types = set(job.parameters.types or EXPORT_TYPES)
        needed = types | (PA_TYPES if types & PA_TYPES else set())
        since = since_stamp(job.parameters.since) if job.parameters.since else None
        files = NdjsonFiles(settings.lines_per_file)
        done = 0
        with self._engine.connect() as connection:
            every = tenants(connection)
        for batch in _chunks(group.members, settings.batch):
            excluded = self._excluded(group, payer, batch, every)
            self._record_exclusions(claim, group, excluded)
            included = [p for p in batch if p not in excluded]
            with self._engine.connect() as connection:
                found = patient_resources(connection, included, needed, every)
            for line in select_lines(found, types, since, policy):
                files.add(line.resource_type, line.body)
            done += len(batch)
            progress = f"{done} of {len(group.members)} members"
            if not self.jobs.progress(claim, self._now(), settings.lease, progress, files.full()):
                log.info("bulk export job %s was cancelled or taken over", job.job_id)
                return
        if not self.jobs.progress(claim, self._now(), settings.lease, "writing", files.rest()):
            return
        now = self._now()
        self.jobs.finish(claim, now, now + settings.file_lifetime)
