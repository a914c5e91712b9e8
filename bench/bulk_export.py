"""Benchmark: Provider Access bulk export (Group/$export) of 10,000 synthetic members on PostgreSQL, in
resources per second, beside a plain ``COPY`` of the same stored rows to STDOUT in the same run.

Each member has a Patient, a Coverage, a PA Claim and its ClaimResponse and two Observations (six
resources); 1 % of the members opted out of Provider Access. The rows are written straight into the
storage tables (resources, versions and the same search index rows the repository writes), then one export
job runs to completion in this process (``ExportRunner.run_once``: consent decisions, selection, NDJSON
files stored in the database). The baseline copies the current JSON of the same resource types out of the
same tables with ``COPY ... TO STDOUT``: what the database alone needs to hand the rows over.

Needs PostgreSQL: PRIORGATE_BENCH_DATABASE_URL or PRIORGATE_TEST_DATABASE_URL (a private schema, dropped
afterwards); without one it says so and exits 0.

Usage: ``.venv/bin/python bench/bulk_export.py [--members N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import Figure, Report  # noqa: E402

from server.bulk.content import EXPORT_TYPES  # noqa: E402
from server.bulk.jobs import JobStore, Parameters  # noqa: E402
from server.bulk.runner import BulkSettings, ExportRunner  # noqa: E402
from server.consent.codes import PAYER_API_CONSENT_SYSTEM, PROVIDER_ACCESS  # noqa: E402
from server.fhir_json import dumps  # noqa: E402
from server.search.definitions import load_registry  # noqa: E402
from server.search.values import normalize, timestamp  # noqa: E402
from server.storage.engine import make_engine  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.private_schema import private_schema  # noqa: E402
from server.storage.repository import Repository, instant  # noqa: E402
from server.storage.schema import idx_date, idx_reference, idx_string, idx_token, resource, resource_version  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BATCH = 2000
Json = dict[str, Any]


def member(n: int) -> Iterator[Json]:
    pid = f"m{n:06d}"
    patient = {"reference": f"Patient/{pid}"}
    yield {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:bench:member", "value": pid}],
        "name": [{"family": f"Member{n}", "given": ["Bench"]}],
        "gender": "female" if n % 2 else "male",
        "birthDate": "1970-01-01",
    }
    yield {
        "resourceType": "Coverage",
        "id": f"cov-{pid}",
        "status": "active",
        "beneficiary": patient,
        "payor": [{"reference": "Organization/bench-payer"}],
    }
    yield {
        "resourceType": "Claim",
        "id": f"claim-{pid}",
        "status": "active",
        "use": "preauthorization",
        "patient": patient,
        "created": "2026-01-15",
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]
                },
                "servicedDate": "2026-02-01",
            }
        ],
    }
    yield {
        "resourceType": "ClaimResponse",
        "id": f"cr-{pid}",
        "status": "active",
        "use": "preauthorization",
        "outcome": "complete",
        "patient": patient,
        "request": {"reference": f"Claim/claim-{pid}"},
        "created": "2026-01-16",
    }
    for k, when in enumerate(("2021-05-01", "2025-05-01")):
        yield {
            "resourceType": "Observation",
            "id": f"obs{k}-{pid}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": patient,
            "effectiveDateTime": when,
            "valueQuantity": {"value": 70 + k, "unit": "kg"},
        }
    if n % 100 == 0:
        yield {
            "resourceType": "Consent",
            "id": f"optout-{pid}",
            "status": "active",
            "scope": {"text": "privacy"},
            "category": [{"coding": [{"system": PAYER_API_CONSENT_SYSTEM, "code": PROVIDER_ACCESS}]}],
            "patient": patient,
            "provision": {"type": "deny"},
        }


def load(repository: Repository, members: int) -> int:
    """Write the members, their data and the attribution Group; returns how many resources."""
    stamp = timestamp(NOW)
    group = {
        "resourceType": "Group",
        "id": "bench-group",
        "type": "person",
        "actual": True,
        "managingEntity": {"reference": "Organization/bench-clinic"},
        "member": [{"entity": {"reference": f"Patient/m{n:06d}"}} for n in range(members)],
    }

    def everything() -> Iterator[Json]:
        yield group
        for n in range(members):
            yield from member(n)

    written = 0
    pending: list[Json] = []
    with repository.engine.begin() as connection:
        for body in everything():
            pending.append(body)
            if len(pending) >= BATCH:
                written += _write(connection, repository, pending, stamp)
                pending = []
        written += _write(connection, repository, pending, stamp)
    return written


def _write(connection: Any, repository: Repository, bodies: list[Json], stamp: str) -> int:
    rows: dict[Any, list[Json]] = {
        t: [] for t in (resource, resource_version, idx_token, idx_string, idx_reference, idx_date)
    }
    for body in bodies:
        rt, rid = body["resourceType"], body["id"]
        stored = {"resourceType": rt, "id": rid, "meta": {"versionId": "1", "lastUpdated": instant(stamp)}}
        stored |= {k: v for k, v in body.items() if k not in stored}
        raw = dumps(stored)
        key = {"tenant": "", "resource_type": rt, "resource_id": rid}
        rows[resource].append(
            {**key, "version_id": 1, "last_updated": stamp, "deleted": False, "content": orjson.Fragment(raw)}
        )
        rows[resource_version].append(
            {**key, "version_id": 1, "last_updated": stamp, "deleted": False, "method": "create", "raw": raw}
        )
        index = repository.extractor.rows(rt, stored)
        rows[idx_token] += [{**key, "param": p, "system": t.system, "code": t.code} for p, t in index.tokens]
        rows[idx_string] += [{**key, "param": p, "value": s, "norm": normalize(s)} for p, s in index.strings]
        rows[idx_reference] += [
            {**key, "param": p, "target_type": r.target_type, "target_id": r.target_id, "url": r.url}
            for p, r in index.references
        ]
        rows[idx_date] += [{**key, "param": p, "low": d.low, "high": d.high} for p, d in index.dates]
    for table, values in rows.items():
        if values:
            connection.execute(insert(table), values)
    return len(bodies)


def copy_rate(repository: Repository) -> tuple[float, int]:
    """COPY the current JSON of the exported types to STDOUT; (rows per second, rows)."""
    types = ", ".join(f"'{t}'" for t in EXPORT_TYPES)
    statement = (
        "COPY (SELECT v.raw FROM resource r JOIN resource_version v ON v.tenant = r.tenant "
        "AND v.resource_type = r.resource_type AND v.resource_id = r.resource_id "
        f"AND v.version_id = r.version_id WHERE NOT r.deleted AND r.resource_type IN ({types})) TO STDOUT"
    )
    raw = repository.engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        rows = 0
        with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
            for _ in copy.rows():
                rows += 1
        seconds = time.perf_counter() - started
    finally:
        raw.close()
    return rows / seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    base = os.environ.get("PRIORGATE_BENCH_DATABASE_URL") or os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    report = Report(
        "bulk_export",
        f"Provider Access Group/$export, {args.members:,} members x 6 resources (1 % opted out), PostgreSQL, "
        "one job in-process, 10,000 lines per file; baseline: COPY of the same rows to STDOUT",
    )
    if not base:
        report.note("skipped: set PRIORGATE_BENCH_DATABASE_URL or PRIORGATE_TEST_DATABASE_URL (PostgreSQL)")
        report.finish()
        return 0
    with private_schema(base, prefix="bench_bulk") as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            repository = Repository(engine, load_registry(), now=lambda: NOW)
            started = time.perf_counter()
            written = load(repository, args.members)
            report.note(
                f"loaded {written:,} resources in {time.perf_counter() - started:.1f} s (not measured)"
            )
            with engine.begin() as connection:  # committed: the statistics are what the planner reads
                connection.exec_driver_sql("ANALYZE")
            best_copy, copied = max(copy_rate(repository) for _ in range(2))
            jobs = JobStore(engine)
            jobs.create(
                client_id="bench",
                group_id="bench-group",
                request="http://bench/fhir/Group/bench-group/$export",
                base="http://bench/fhir",
                parameters=Parameters((), None, "application/fhir+ndjson"),
                now=NOW,
            )
            runner = ExportRunner(jobs, repository, lambda: NOW, BulkSettings())
            started = time.perf_counter()
            assert runner.run_once()
            seconds = time.perf_counter() - started
            files = jobs.files(jobs_id(jobs))
            exported = sum(f.count for f in files)
            report.add(
                Figure(
                    name=f"Group/$export {args.members:,} members, resources exported",
                    unit="/s",
                    value=exported / seconds,
                    baseline="COPY of the same rows to STDOUT",
                    baseline_value=best_copy,
                )
            )
            report.note(
                f"export: {exported:,} resources in {len(files)} files, {seconds:.2f} s; "
                f"COPY: {copied:,} rows (opted-out members' rows included)"
            )
        finally:
            engine.dispose()
    report.finish()
    return 0


def jobs_id(jobs: JobStore) -> str:
    with jobs._engine.connect() as connection:  # noqa: SLF001 - the only job of this private schema
        return str(connection.exec_driver_sql("SELECT job_id FROM bulk_export_job").scalar_one())


if __name__ == "__main__":
    raise SystemExit(main())
