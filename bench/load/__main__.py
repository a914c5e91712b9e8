"""Bounded load run on loopback against PostgreSQL: mixed CRD, DTR and PAS traffic at a fixed rate.

    PRIORGATE_TEST_DATABASE_URL=postgresql+psycopg://user@127.0.0.1/db .venv/bin/python -m bench.load \\
        [--rate 40] [--seconds 30] [--workers 1] [--seed 7]

(``make load``.) Starts ``priorgate`` under uvicorn on 127.0.0.1 over a private schema of that database
(dropped afterwards), then sends requests on a fixed schedule (open loop: latency counts from the
scheduled start, so queueing is not hidden) in a seeded mix of about 80 % CRD order-sign hooks, 10 % DTR
``$questionnaire-package`` and 10 % PAS (``$submit``, and ``$inquire`` for earlier submissions). Reports
throughput, p50/p99 latency and errors per route, writes ``bench/load-results.json``, and then checks:

- every PAS submission answered 200 is in the database with exactly the response that was returned;
- every notification owed was delivered exactly once (``check_notifications``: a hook for the
  subscription work; reported as not checked until it exists).

Exit status 1 when a request failed or a check failed. Bounded: the run stops by itself after
``--seconds`` plus a grace period, and every request has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from _report import percentiles  # noqa: E402
from crd_hooks import payload as crd_payload  # noqa: E402
from dtr import package_input  # noqa: E402

from conformance.suites import pas_server  # noqa: E402
from server.storage.engine import make_engine  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.schema import pas_submission, pas_submission_key  # noqa: E402

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
TRN = "urn:trnorg:1999999999"
FHIR = {"content-type": "application/fhir+json"}
RESULTS = BENCH / "load-results.json"
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Route:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # transport errors and timeouts

    @property
    def errors(self) -> int:
        return self.failures + sum(n for status, n in self.statuses.items() if status >= 400)


@dataclass
class Run:
    routes: dict[str, Route] = field(default_factory=dict)
    accepted: dict[str, Any] = field(default_factory=dict)  # PAS trace -> the response Bundle returned
    submitted: list[dict[str, Any]] = field(default_factory=list)  # request Bundles answered 200
    elapsed: float = 0.0

    def route(self, name: str) -> Route:
        return self.routes.setdefault(name, Route(name))


# -- traffic -----------------------------------------------------------------------------------------


def pas_bundle(template: dict[str, Any], trace: str) -> dict[str, Any]:
    body = copy.deepcopy(template)
    body["entry"][0]["resource"]["identifier"][0]["value"] = trace
    return body


def inquiry_of(bundle: dict[str, Any]) -> dict[str, Any]:
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = f"I{uuid.uuid4().hex[:12]}"
    return inquiry


def plan(rate: float, seconds: float, seed: int) -> list[str]:
    """The seeded sequence of request kinds: ~80 % crd, ~10 % dtr, ~10 % pas (half submits, half
    inquiries once something was submitted)."""
    rng = random.Random(seed)
    kinds = []
    for _ in range(int(rate * seconds)):
        roll = rng.random()
        if roll < 0.8:
            kinds.append("crd")
        elif roll < 0.9:
            kinds.append("dtr")
        else:
            kinds.append("pas-submit" if rng.random() < 0.5 or "pas-submit" not in kinds else "pas-inquire")
    return kinds


async def drive(base: str, kinds: list[str], rate: float) -> Run:
    run = Run()
    template = pas_server.request_bundle("LOAD", ("72148", "97110"))
    crd_body = orjson.dumps(crd_payload())
    dtr_body = orjson.dumps(package_input("E0601"))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def one(kind: str, due: float) -> None:
            trace = None
            if kind == "crd":
                name, path, body = "CRD order-sign", "/cds-services/order-sign-crd", crd_body
                headers = {"content-type": "application/json"}
            elif kind == "dtr":
                name, path, body = (
                    "DTR $questionnaire-package",
                    "/fhir/Questionnaire/$questionnaire-package",
                    dtr_body,
                )
                headers = FHIR
            elif kind == "pas-submit" or not run.submitted:
                trace = uuid.uuid4().hex[:20]
                bundle = pas_bundle(template, trace)
                name, path, body, headers = (
                    "PAS $submit",
                    "/pas/2.2.1/Claim/$submit",
                    orjson.dumps(bundle),
                    FHIR,
                )
            else:
                inquiry = inquiry_of(random.Random(due).choice(run.submitted))
                name, path, body, headers = (
                    "PAS $inquire",
                    "/pas/2.2.1/Claim/$inquire",
                    orjson.dumps(inquiry),
                    FHIR,
                )
            route = run.route(name)
            try:
                response = await client.post(path, content=body, headers=headers)
            except httpx.HTTPError:
                route.failures += 1
                return
            route.latencies.append(time.perf_counter() - due)
            route.statuses[response.status_code] = route.statuses.get(response.status_code, 0) + 1
            if trace is not None and response.status_code == 200:
                run.accepted[trace] = response.json()
                run.submitted.append(orjson.loads(body))

        # Warm-up, not counted: one request of each kind (first calls compile profiles and rules).
        for kind in ("crd", "dtr", "pas-submit", "pas-inquire"):
            await one(kind, time.perf_counter())
        run.routes.clear()

        began = time.perf_counter()
        tasks = []
        for i, kind in enumerate(kinds):
            due = began + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(kind, due)))
        await asyncio.gather(*tasks)
        run.route("all").latencies = [x for r in run.routes.values() for x in r.latencies]
        run.elapsed = time.perf_counter() - began
    return run


# -- checks ------------------------------------------------------------------------------------------


def check_submissions(database_url: str, accepted: dict[str, Any]) -> list[str]:
    """Traces of accepted submissions not stored with exactly the response returned."""
    engine = make_engine(database_url)
    problems = []
    try:
        with engine.connect() as conn:
            for trace, answer in accepted.items():
                row = conn.execute(
                    select(pas_submission.c.response)
                    .join(
                        pas_submission_key,
                        (pas_submission_key.c.submission_id == pas_submission.c.submission_id)
                        & (pas_submission_key.c.tenant == pas_submission.c.tenant),
                    )
                    .where(pas_submission_key.c.token == f"{TRN}|{trace}")
                ).first()
                if row is None:
                    problems.append(f"{trace}: not stored")
                elif orjson.loads(row.response) != answer:
                    problems.append(f"{trace}: stored response differs from the one returned")
    finally:
        engine.dispose()
    return problems


def check_notifications(database_url: str, accepted: dict[str, Any]) -> list[str] | None:
    """Every notification owed for the accepted submissions delivered exactly once to the subscriber.

    The hook for the PAS subscription work: when it lands, this subscribes a loopback listener before
    the run (see ``main``), lists the notifications owed from the database (pended submissions decided
    during the run), and returns one problem per event owed that the listener received zero times or
    more than once (dedupe by ``eventNumber`` of the SubscriptionStatus). ``None``: not checked yet.
    """
    return None


# -- the server --------------------------------------------------------------------------------------


@contextmanager
def private_schema(base_url: str) -> Iterator[str]:
    schema = f"load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def server(database_url: str, workers: int) -> Iterator[str]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PRIORGATE_DATABASE_URL": database_url,
        "PRIORGATE_DEMO_CONTENT": "true",
        "PRIORGATE_CDS_DEVELOPMENT_MODE": "true",
        "PRIORGATE_AUTH_MODE": "off",  # the load mix measures the routes; token checks are cached per token
        "PRIORGATE_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:app_from_env", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/fhir/metadata", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# -- report ------------------------------------------------------------------------------------------


def report(
    run: Run, args: argparse.Namespace, problems: list[str], notifications: list[str] | None
) -> dict[str, Any]:
    elapsed = run.elapsed or args.seconds
    rows = []
    for route in sorted(run.routes.values(), key=lambda r: (r.name == "all", r.name)):
        count = len(route.latencies) + route.failures
        if route.name == "all":
            count = sum(len(r.latencies) + r.failures for r in run.routes.values() if r.name != "all")
            errors = sum(r.errors for r in run.routes.values() if r.name != "all")
        else:
            errors = route.errors
        p50, p99 = percentiles(route.latencies) if route.latencies else (float("nan"), float("nan"))
        rows.append(
            {
                "route": route.name,
                "requests": count,
                "per_s": round(count / elapsed, 1),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "errors": errors,
                "statuses": {str(k): v for k, v in sorted(route.statuses.items())},
            }
        )
    print(
        f"load: {args.rate:g} requests/s scheduled for {args.seconds:g} s, {args.workers} worker(s), "
        f"seed {args.seed}"
    )
    print(f"{'route':<28}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  statuses")
    for row in rows:
        print(
            f"{row['route']:<28}{row['requests']:>9}{row['per_s']:>8}{row['p50_ms']:>9}{row['p99_ms']:>9}"
            f"{row['errors']:>8}  {row['statuses']}"
        )
    print(
        f"PAS submissions accepted: {len(run.accepted)}; stored with their response: "
        f"{len(run.accepted) - len(problems)}"
    )
    for problem in problems[:20]:
        print(f"  {problem}")
    if notifications is None:
        print("notifications delivered exactly once: not checked (PAS subscriptions not wired yet)")
    else:
        print(f"notifications delivered exactly once: {'yes' if not notifications else 'NO'}")
        for problem in notifications[:20]:
            print(f"  {problem}")
    document = {
        "rate": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "seed": args.seed,
        "routes": rows,
        "accepted_submissions": len(run.accepted),
        "submission_problems": problems,
        "notification_problems": notifications,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, all routes together")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long requests are sent")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=7, help="seed of the traffic mix")
    parser.add_argument("--database-url", help="PostgreSQL (default: PRIORGATE_TEST_DATABASE_URL)")
    args = parser.parse_args(argv)
    database = args.database_url or os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    if not database or not database.startswith("postgresql"):
        print("bench.load needs PostgreSQL: set PRIORGATE_TEST_DATABASE_URL or pass --database-url")
        return 2
    kinds = plan(args.rate, args.seconds, args.seed)
    bound = args.seconds + 120.0
    with private_schema(database) as url, server(url, args.workers) as base:
        run = asyncio.run(asyncio.wait_for(drive(base, kinds, args.rate), bound))
        problems = check_submissions(url, run.accepted)
        notifications = check_notifications(url, run.accepted)
        document = report(run, args, problems, notifications)
    failed = any(row["errors"] for row in document["routes"]) or problems or notifications
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
