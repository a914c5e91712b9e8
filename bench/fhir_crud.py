"""Benchmark: FHIR creates/s, reads/s and searches/s on SQLite and PostgreSQL, each beside an echo baseline.

Both servers run under real uvicorn on 127.0.0.1 (one worker each) and are driven by the same client with
the same concurrency in the same run; results are reported as ratios to the echo baseline, so the numbers
mean something on any machine. PostgreSQL runs when PRIORGATE_TEST_DATABASE_URL (or
PRIORGATE_BENCH_DATABASE_URL) names a database; it uses a private schema dropped afterwards.

Usage: ``.venv/bin/python bench/fhir_crud.py [--requests N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import Figure, Report, percentiles  # noqa: E402

from server.storage.engine import make_engine  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.private_schema import private_schema  # noqa: E402

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:bench:mrn", "value": "0"}],
    "active": True,
    "name": [{"family": "Benchmark", "given": ["Pat", "Q."]}],
    "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "pat@example.org"}],
    "gender": "female",
    "birthDate": "1975-04-12",
    "address": [{"line": ["1 Bench Way"], "city": "Springfield", "state": "IL", "postalCode": "62701"}],
    "managingOrganization": {"reference": "Organization/pgdemo-payer"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_server(target: str, env: dict[str, str], factory: bool) -> Iterator[str]:
    port = _free_port()
    args = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"] + (["--factory"] if factory else [])
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{target} did not start")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Rate:
    per_s: float
    p50_ms: float
    p99_ms: float


async def rate(
    count: int, concurrency: int, call: Callable[[httpx.AsyncClient, int], Awaitable[None]], base: str
) -> Rate:
    """Requests per second for ``count`` calls spread over ``concurrency`` connections, with latencies."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        counter = iter(range(count))

        async def worker() -> None:
            for n in counter:
                began = time.perf_counter()
                await call(client, n)
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Rate(count / (time.perf_counter() - start), *percentiles(latencies))


def _check(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:200]}"
        )


@dataclass(frozen=True)
class Row:
    engine: str
    operation: str
    server: Rate
    echo: Rate


async def measure(
    engine: str, fhir: str, echo: str, requests: int, concurrency: int, after_load: Callable[[], None]
) -> list[Row]:
    # Each Patient has its own member identifier, as in a payer's member lookup.
    bodies = [
        httpx.Request(
            "POST", "/", json={**PATIENT, "identifier": [{"system": "urn:bench:mrn", "value": str(n)}]}
        ).content
        for n in range(requests)
    ]
    body = bodies[0]
    headers = {"Content-Type": "application/fhir+json"}
    ids: list[str] = []

    async def create(client: httpx.AsyncClient, n: int) -> None:
        response = await client.post("/fhir/Patient", content=bodies[n], headers=headers)
        _check(response, 201)
        ids.append(response.json()["id"])

    async def echo_post(client: httpx.AsyncClient, n: int) -> None:
        _check(await client.post("/echo", content=body, headers=headers), 201)

    async def read(client: httpx.AsyncClient, n: int) -> None:
        _check(await client.get(f"/fhir/Patient/{ids[n % len(ids)]}"), 200)

    async def echo_get(client: httpx.AsyncClient, n: int) -> None:
        _check(await client.get("/echo"), 200)

    async def search(client: httpx.AsyncClient, n: int) -> None:
        params = {"identifier": f"urn:bench:mrn|{n % requests}", "family": "benchmark"}
        _check(await client.get("/fhir/Patient", params=params), 200)

    # Alternate server and echo, best of two rounds each, so a noisy moment does not decide the ratio.
    plan = [
        ("create", requests, create, echo_post),
        ("read", requests * 2, read, echo_get),
        ("search", requests, search, echo_get),
    ]
    rows = []
    for operation, count, server_call, echo_call in plan:
        server_best = echo_best = Rate(0.0, 0.0, 0.0)
        for _ in range(2):
            server_best = max(server_best, await rate(count, concurrency, server_call, fhir), key=_per_s)
            echo_best = max(echo_best, await rate(count, concurrency, echo_call, echo), key=_per_s)
        rows.append(Row(engine, operation, server_best, echo_best))
        if operation == "create":
            after_load()
    return rows


def _per_s(rate: Rate) -> float:
    return rate.per_s


def run_engine(name: str, database_url: str, requests: int, concurrency: int) -> list[Row]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    env = {
        "PRIORGATE_DATABASE_URL": database_url,
        "PRIORGATE_DEMO_CONTENT": "false",
        "PRIORGATE_AUTH_MODE": "off",  # storage and REST cost; token checks are cached per token
        "PRIORGATE_LOG_LEVEL": "warning",
    }
    with (
        uvicorn_server("server.app:app_from_env", env, factory=True) as fhir,
        uvicorn_server("bench._baseline:app", {}, factory=False) as echo,
    ):
        return asyncio.run(measure(name, fhir, echo, requests, concurrency, lambda: analyze(database_url)))


def analyze(database_url: str) -> None:
    """Refresh planner statistics after the bulk load, as autovacuum would on a server in steady state
    (on tables that grew from empty within seconds, PostgreSQL otherwise plans with empty-table estimates)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=300, help="creates and searches per engine (reads: 2x)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = Report(
        "fhir_crud",
        f"FHIR Patient create/read/search, {args.requests} creates and searches, {2 * args.requests} reads "
        f"per engine, {args.concurrency} connections, 1 uvicorn worker, best of two rounds; "
        "baseline: FastAPI echo (POST for create, GET for read and search)",
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run_engine("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.requests, args.concurrency)
    pg = os.environ.get("PRIORGATE_BENCH_DATABASE_URL") or os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    if pg:
        with private_schema(pg, "bench") as url:
            rows += run_engine("postgresql", url, args.requests, args.concurrency)
    else:
        report.note("PostgreSQL skipped: set PRIORGATE_TEST_DATABASE_URL to include it")
    for row in rows:
        base = "FastAPI echo " + ("POST" if row.operation == "create" else "GET")
        report.add(
            Figure(
                f"{row.engine} {row.operation}",
                "/s",
                row.server.per_s,
                base,
                row.echo.per_s,
                row.server.p50_ms,
                row.server.p99_ms,
                row.echo.p50_ms,
                row.echo.p99_ms,
            )
        )
    report.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
