"""Bounded load run on loopback against PostgreSQL: mixed CRD, DTR and PAS traffic at a fixed rate.

    PRIORGATE_TEST_DATABASE_URL=postgresql+psycopg://user@127.0.0.1/db .venv/bin/python -m bench.load \\
        [--rate 40] [--seconds 30] [--workers 1] [--seed 7] [--auth local|off]

(``make load``.) Starts ``priorgate`` under uvicorn on 127.0.0.1 over a private schema of that database
(dropped afterwards), with security on as in production (``--auth local``: clients registered in a
temporary clients file, one access token fetched per client, a signed CDS client JWT on every CRD call;
``--auth off`` measures the routes without it). A loopback subscriber subscribes to PAS results. Then
requests go out on a fixed schedule (open loop: latency counts from the scheduled start, so queueing is
not hidden) in a seeded mix of about 80 % CRD order-sign hooks, 10 % DTR ``$questionnaire-package`` and
10 % PAS (``$submit``, half of them pended for review, and ``$inquire`` for earlier submissions), while a
reviewer decides the pended requests through the review API about once a second. Reports throughput,
p50/p99 latency and errors per route, writes ``bench/load-results.json``, and then checks:

- every PAS submission answered 200 is in the database with the response that was returned (or, once
  decided, a later version of the same ClaimResponse carrying the decision);
- every notification owed (one per decision) reached the subscriber, once the outbox drained (bounded
  wait): none missing, repeats counted (delivery is at least once; the event number dedupes).

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
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from _report import percentiles  # noqa: E402
from crd_hooks import payload as crd_payload  # noqa: E402
from dtr import package_input  # noqa: E402

from bench.load.auth import JWT_MAX_AGE_S, LoadSecurity  # noqa: E402
from bench.load.notifications import NotificationCheck, check_notifications  # noqa: E402
from conformance.listener import Listener  # noqa: E402
from conformance.suites import pas_server  # noqa: E402
from server.storage.engine import make_engine  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.private_schema import private_schema  # noqa: E402
from server.storage.schema import pas_submission, pas_submission_key  # noqa: E402

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
TRN = "urn:trnorg:1999999999"
FHIR = {"content-type": "application/fhir+json"}
RESULTS = BENCH / "load-results.json"
REQUEST_TIMEOUT_S = 30.0
REVIEW_EVERY_S = 1.0  # how often the reviewer looks at the queue during the run
PENDED = ("72148", "97110")  # the MRI pends for review (the demo rules), the therapy is approved
DECIDED = ("97110",)  # approved at once: no notification owed
EHR, REVIEWER = "load-ehr", "load-reviewer"


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
    decided: list[str] = field(default_factory=list)  # claim identifiers of reviews decided (200)
    elapsed: float = 0.0

    def route(self, name: str) -> Route:
        return self.routes.setdefault(name, Route(name))


# -- traffic -----------------------------------------------------------------------------------------


def pas_bundle(template: dict[str, Any], trace: str) -> dict[str, Any]:
    body = copy.deepcopy(template)
    body["entry"][0]["resource"]["identifier"][0]["value"] = trace
    return body


class Clients:
    """The headers each load client sends: access tokens (``--auth local``) or nothing (``--auth off``),
    and for CRD a fresh CDS client JWT per call."""

    def __init__(self, security: LoadSecurity | None, base: str, crd_calls: int) -> None:
        self._security = security
        self._base = base
        self._minted = time.monotonic()
        self._jwts = security.cds_jwts(base, crd_calls) if security else []

    def of(self, client_id: str) -> dict[str, str]:
        return self._security.headers(client_id) if self._security else {}

    def crd(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._security is None:
            return headers
        if not self._jwts or time.monotonic() - self._minted > JWT_MAX_AGE_S:
            self._jwts, self._minted = self._security.cds_jwts(self._base, 64), time.monotonic()
        return headers | {"Authorization": f"Bearer {self._jwts.pop()}"}


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


async def drive(base: str, kinds: list[str], rate: float, clients: Clients) -> Run:
    run = Run()
    templates = [pas_server.request_bundle("LOAD", PENDED), pas_server.request_bundle("LOAD", DECIDED)]
    crd_body = orjson.dumps(crd_payload())
    dtr_body = orjson.dumps(package_input("E0601"))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def one(kind: str, due: float) -> None:
            trace = None
            if kind == "crd":
                name, path, body = "CRD order-sign", "/cds-services/order-sign-crd", crd_body
                headers = clients.crd()
            elif kind == "dtr":
                name, path, body = (
                    "DTR $questionnaire-package",
                    "/fhir/Questionnaire/$questionnaire-package",
                    dtr_body,
                )
                headers = FHIR | clients.of(EHR)
            elif kind == "pas-submit" or not run.submitted:
                trace = uuid.uuid4().hex[:20]
                bundle = pas_bundle(templates[len(run.accepted) % 2], trace)  # every other one pends
                name, path, body, headers = (
                    "PAS $submit",
                    "/pas/2.2.1/Claim/$submit",
                    orjson.dumps(bundle),
                    FHIR | clients.of(EHR),
                )
            else:
                inquiry = inquiry_of(random.Random(due).choice(run.submitted))
                name, path, body, headers = (
                    "PAS $inquire",
                    "/pas/2.2.1/Claim/$inquire",
                    orjson.dumps(inquiry),
                    FHIR | clients.of(EHR),
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

        async def timed(name: str, method: str, path: str, **options: Any) -> httpx.Response | None:
            route, began = run.route(name), time.perf_counter()
            try:
                response = await client.request(method, path, **options)
            except httpx.HTTPError:
                route.failures += 1
                return None
            route.latencies.append(time.perf_counter() - began)
            route.statuses[response.status_code] = route.statuses.get(response.status_code, 0) + 1
            return response

        async def review() -> None:
            """One look at the queue as the reviewer: approve every pended item of every open review."""
            queue = await timed("PAS review queue", "GET", "/pas/review", headers=clients.of(REVIEWER))
            if queue is None or queue.status_code != 200:
                return
            for item in queue.json():
                decision = {
                    "reviewer": {"id": "load-reviewer"},
                    "decisions": [{"itemSequence": n, "action": "approve"} for n in item["pendedSequences"]],
                }
                answer = await timed(
                    "PAS review decision",
                    "POST",
                    f"/pas/review/{item['id']}/decision",
                    json=decision,
                    headers=clients.of(REVIEWER),
                )
                if answer is not None and answer.status_code == 200:
                    run.decided.extend(item["claimIdentifiers"])

        # Warm-up, not counted: one request of each kind (first calls compile profiles and rules).
        for kind in ("crd", "dtr", "pas-submit", "pas-inquire"):
            await one(kind, time.perf_counter())
        run.routes.clear()

        traffic_done = asyncio.Event()

        async def reviewer() -> None:
            while not traffic_done.is_set():
                await review()
                try:
                    await asyncio.wait_for(traffic_done.wait(), REVIEW_EVERY_S)
                except TimeoutError:
                    pass
            await review()  # what pended at the very end

        reviewing = asyncio.create_task(reviewer())
        began = time.perf_counter()
        tasks = []
        for i, kind in enumerate(kinds):
            due = began + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(kind, due)))
        await asyncio.gather(*tasks)
        traffic_done.set()
        await reviewing
        run.route("all").latencies = [x for r in run.routes.values() for x in r.latencies]
        run.elapsed = time.perf_counter() - began
    return run


# -- checks ------------------------------------------------------------------------------------------


def check_submissions(database_url: str, accepted: dict[str, Any], decided: set[str]) -> list[str]:
    """Traces of accepted submissions not stored with the response returned: exactly, or for a request
    decided since (its claim identifier in ``decided``) a later version of the same ClaimResponse."""
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
                elif f"{TRN}|{trace}" in decided:
                    stored = orjson.loads(row.response)["entry"][0]["resource"]
                    if stored["id"] != answer["entry"][0]["resource"]["id"]:
                        problems.append(f"{trace}: decided, but stored with another ClaimResponse")
                elif orjson.loads(row.response) != answer:
                    problems.append(f"{trace}: stored response differs from the one returned")
    finally:
        engine.dispose()
    return problems


# -- the server --------------------------------------------------------------------------------------


@contextmanager
def server(database_url: str, workers: int, security: LoadSecurity | None) -> Iterator[str]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PRIORGATE_DATABASE_URL": database_url,
        "PRIORGATE_DEMO_CONTENT": "true",
        "PRIORGATE_LOG_LEVEL": "warning",
    }
    if security is None:  # --auth off: the routes alone, no tokens and no CDS client JWTs
        env |= {"PRIORGATE_AUTH_MODE": "off", "PRIORGATE_CDS_DEVELOPMENT_MODE": "true"}
    else:
        env |= security.env(base)
    command = [sys.executable, "-m", "uvicorn", "server.app:app_from_env", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
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


def subscribe(base: str, endpoint: str, headers: dict[str, str]) -> str:
    """A PAS 2.2.1 Subscription (full-resource) to ``endpoint``; its id once the handshake made it active."""
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, headers=headers) as client:
        created = client.post(
            "/pas/2.2.1/Subscription",
            content=orjson.dumps(pas_server.subscription(endpoint, "2.2.1")),
            headers=FHIR,
        )
        if created.status_code != 201:
            raise SystemExit(f"could not subscribe: HTTP {created.status_code} {created.text[:300]}")
        subscription_id = str(created.json()["id"])
        deadline = time.monotonic() + 30
        while client.get(f"/pas/2.2.1/Subscription/{subscription_id}").json().get("status") != "active":
            if time.monotonic() > deadline:
                raise SystemExit("the subscription never became active (no handshake)")
            time.sleep(0.2)
    return subscription_id


def report(
    run: Run, args: argparse.Namespace, problems: list[str], notifications: NotificationCheck
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
        f"seed {args.seed}, auth {args.auth}"
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
    n = notifications
    print(
        f"PAS reviews decided during the run: {len(run.decided)}; notifications owed: {n.owed}, "
        f"numbered: {n.numbered}, delivered (by event number): {n.delivered}, repeats: {n.repeats}, "
        f"missing: {n.owed - n.delivered}; outbox drained {n.drained_s:.1f} s after the traffic"
    )
    print(f"every notification owed delivered: {'yes' if not n.problems else 'NO'}")
    for problem in n.problems[:20]:
        print(f"  {problem}")
    document = {
        "rate": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "seed": args.seed,
        "auth": args.auth,
        "routes": rows,
        "accepted_submissions": len(run.accepted),
        "decided_reviews": len(run.decided),
        "submission_problems": problems,
        "notifications": n.as_json(),
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
    parser.add_argument(
        "--auth",
        choices=("local", "off"),
        default="local",
        help="local: access tokens and CDS client JWTs as in production (default); off: none",
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=60.0, help="longest wait for the outbox to drain afterwards"
    )
    args = parser.parse_args(argv)
    database = args.database_url or os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    if not database or not database.startswith("postgresql"):
        print("bench.load needs PostgreSQL: set PRIORGATE_TEST_DATABASE_URL or pass --database-url")
        return 2
    kinds = plan(args.rate, args.seconds, args.seed)
    bound = args.seconds + 120.0
    with (
        tempfile.TemporaryDirectory(prefix="priorgate-load-") as folder,
        private_schema(database, "load") as url,
        Listener() as hook,
    ):
        security = LoadSecurity.create(Path(folder)) if args.auth == "local" else None
        with server(url, args.workers, security) as base:
            if security is not None:
                anonymous = httpx.post(base + "/pas/2.2.1/Claim/$submit", content=b"{}", headers=FHIR)
                if anonymous.status_code != 401:
                    raise SystemExit(f"security is not on: an anonymous $submit got {anonymous.status_code}")
                security.fetch_tokens(base)
            clients = Clients(security, base, kinds.count("crd") + 1)
            subscription_id = subscribe(base, hook.url, clients.of(EHR))
            run = asyncio.run(asyncio.wait_for(drive(base, kinds, args.rate, clients), bound))
            problems = check_submissions(url, run.accepted, set(run.decided))
            notifications = check_notifications(
                url, hook, subscription_id, run.decided, wait=args.drain_seconds
            )
            document = report(run, args, problems, notifications)
    failed = any(row["errors"] for row in document["routes"]) or problems or notifications.problems
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
