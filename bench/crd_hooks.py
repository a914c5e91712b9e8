"""CRD order-sign throughput and latency beside a bare FastAPI echo of the same payload.

Starts one uvicorn worker on 127.0.0.1 in a child process serving both the CRD router (with client
JWT verification, ES384, inline JWKS) and ``POST /echo``, then drives each at several concurrency
levels with a bounded number of requests (a fresh signed JWT per CRD call, minted before timing).
Reports p50/p99 latency and requests/s for both, and the CRD/echo ratios (bench/_report.py).

    .venv/bin/python bench/crd_hooks.py [--requests 400] [--levels 1,8,32] [--rate 200] [--alg RS384]

Closed loop: N clients each send the next request when the previous answer arrives. Open loop
(``--rate``): requests start on a fixed schedule and latency counts from the scheduled start, so a
slow server cannot hide its queueing (the "p99 at 200 requests/s" target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from _report import Figure, Report
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISS = "https://ehr.bench"
SERVICE = "/cds-services/order-sign-crd"
SID_PAYER_ID = "https://priorgate.org/fhir/sid/payer-id"


def payload() -> dict[str, Any]:
    """A realistic order-sign with full prefetch: three orders, patient, coverage, encounter, practitioner."""

    def order(rid: str, kind: str, system: str, code: str) -> dict[str, Any]:
        key = {"DeviceRequest": "codeCodeableConcept", "MedicationRequest": "medicationCodeableConcept"}.get(
            kind, "code"
        )
        return {
            "resourceType": kind,
            "id": rid,
            "status": "draft",
            "intent": "order",
            key: {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/pat1"},
            "requester": {"reference": "Practitioner/prac1"},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]}],
            "authoredOn": "2026-11-25",
        }

    orders = [
        order("sr1", "ServiceRequest", "http://www.ama-assn.org/go/cpt", "72148"),
        order("dr1", "DeviceRequest", "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "E0601"),
        order("sr2", "ServiceRequest", "http://www.ama-assn.org/go/cpt", "99213"),
    ]
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "status": "active",
        "beneficiary": {"reference": "Patient/pat1"},
        "payor": [{"identifier": {"system": SID_PAYER_ID, "value": "PGDEMO"}}],
        "class": [{"type": {"coding": [{"code": "plan"}]}, "value": "gold"}],
    }
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.bench/fhir",
        "fhirAuthorization": {
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 30,
            "scope": "user/*.read",
        },
        "context": {
            "userId": "Practitioner/prac1",
            "patientId": "pat1",
            "encounterId": "enc1",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"fullUrl": f"urn:uuid:{o['id']}", "resource": o} for o in orders],
            },
        },
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "pat1",
                "gender": "female",
                "birthDate": "1960-04-12",
            },
            "encounter": {
                "resourceType": "Encounter",
                "id": "enc1",
                "status": "in-progress",
                "class": {"code": "AMB"},
            },
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": coverage}]},
            "practitioners": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Practitioner", "id": "prac1"}}],
            },
            "practitionerRoles": None,
            "devices": None,
            "medications": None,
        },
        "extension": {"davinci-crd.requestedVersion": "2.2"},
    }


def serve(port: int, jwks_path: str) -> None:
    """Child process: one uvicorn worker with the CRD router and the echo endpoint."""
    import logging

    import uvicorn
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from cds_hooks import CdsClientVerifier, CdsServices, InMemoryJtiStore, TrustedIssuer, load_policies
    from cds_hooks.policies import DEMO_POLICY_DIR
    from server.api.cds_hooks import build_router

    logging.basicConfig(level=logging.ERROR)
    jwks = json.loads(Path(jwks_path).read_text())
    client = httpx.AsyncClient()
    clock = lambda: datetime.now(UTC)  # noqa: E731 - the edge of the process owns the clock
    services = CdsServices(load_policies(DEMO_POLICY_DIR), http_client=client, now=clock)
    verifier = CdsClientVerifier([TrustedIssuer(ISS, jwks=jwks)], client, InMemoryJtiStore(), clock)
    app = FastAPI()
    app.include_router(build_router(services, verifier=verifier, public_base_url=f"http://127.0.0.1:{port}"))

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    # A plain route: the limit is FastAPI/uvicorn themselves, no parameter parsing.
    app.router.add_route("/echo", echo, methods=["POST"])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 keep-alive request/response; returns the status code."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def drive(
    host: str, port: int, path: str, body: bytes, tokens: list[str] | None, n: int, concurrency: int
) -> dict[str, float]:
    """A lean keep-alive client (raw asyncio streams) so the client costs little next to the server."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in queue:
                auth = f"Authorization: Bearer {tokens[i]}\r\n" if tokens is not None else ""
                request = (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                    f"{auth}Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                start = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


async def paced(
    host: str, port: int, path: str, body: bytes, tokens: list[str] | None, rate: float, seconds: float
) -> dict[str, float]:
    """Open loop: requests start on a fixed schedule; latency counts from the scheduled start."""
    n = int(rate * seconds)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        auth = f"Authorization: Bearer {tokens[i]}\r\n" if tokens is not None else ""
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status = await _exchange(reader, writer, request)
        latencies.append(time.perf_counter() - due)
        errors += status != 200
        pool.put_nowait((reader, writer))

    began = time.perf_counter()
    tasks = []
    for i in range(n):
        due = began + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not pool.empty():
        pool.get_nowait()[1].close()
    latencies.sort()
    return {
        "requests": n,
        "errors": errors,
        "rps": n / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
    }


def _tokens(pem: bytes, audience: str, n: int, alg: str) -> list[str]:
    now = int(time.time())
    claims = {"iss": ISS, "aud": audience, "iat": now, "exp": now + 300}
    headers = {"kid": "bench", "typ": "JWT"}
    return [
        jwt.encode(claims | {"jti": str(uuid.uuid4())}, pem, algorithm=alg, headers=headers) for _ in range(n)
    ]


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of the server process (Linux /proc): load-independent cost per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PHASE_LIMIT_S = 120.0  # bounded: a stuck phase fails the run instead of hanging it


def _measured(pid: int, run: Any) -> dict[str, float]:
    before = _cpu_seconds(pid)
    row: dict[str, float] = asyncio.run(asyncio.wait_for(run, PHASE_LIMIT_S))
    row["cpu_ms"] = (_cpu_seconds(pid) - before) * 1000 / max(1, row["requests"])
    return row


def _figures(report: Report, label: str, crd: dict[str, float], echo: dict[str, float]) -> None:
    """Throughput and server CPU per request, each beside the echo of the same payload."""
    baseline = "FastAPI echo, same payload"
    errors = int(crd["errors"] + echo["errors"])
    latency = (crd["p50_ms"], crd["p99_ms"], echo["p50_ms"], echo["p99_ms"])
    report.add(
        Figure(f"order-sign {label} throughput", "/s", crd["rps"], baseline, echo["rps"], *latency, errors)
    )
    report.add(
        Figure(f"order-sign {label} server CPU/request", "ms", crd["cpu_ms"], baseline, echo["cpu_ms"])
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=400, help="requests per concurrency level and endpoint"
    )
    parser.add_argument("--levels", default="1,8,32", help="closed-loop concurrency levels")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s (0 to skip)")
    parser.add_argument("--seconds", type=float, default=3.0, help="open-loop duration")
    parser.add_argument("--alg", choices=("ES384", "RS384"), default="ES384", help="client JWT algorithm")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jwks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.jwks)
        return 0
    key: Any
    if args.alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())
    else:
        key = rsa.generate_private_key(65537, 2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    jwk = json.loads(public) | {"kid": "bench", "alg": args.alg}
    jwks_file = Path(f"/tmp/priorgate-bench-jwks-{uuid.uuid4().hex}.json")
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    audience = f"{base}{SERVICE}"
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--jwks", str(jwks_file)])
    failed = False
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/cds-services", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        body = json.dumps(payload()).encode()
        report = Report(
            "crd_hooks",
            f"order-sign, full prefetch, {len(body)} bytes, {args.alg} client JWT per call, "
            f"1 uvicorn worker, {args.requests} requests per level closed loop; "
            "baseline: FastAPI echo of the same payload",
        )
        n = args.requests
        for level in [int(x) for x in args.levels.split(",") if x]:
            asyncio.run(drive("127.0.0.1", port, "/echo", body, None, 50, level))  # warm-up
            echo = _measured(child.pid, drive("127.0.0.1", port, "/echo", body, None, n, level))
            tokens = _tokens(pem, audience, n, args.alg)
            crd = _measured(child.pid, drive("127.0.0.1", port, SERVICE, body, tokens, n, level))
            _figures(report, f"{level} concurrent", crd, echo)
            failed = failed or bool(echo["errors"] or crd["errors"])
        if args.rate > 0:
            count = int(args.rate * args.seconds)
            echo = _measured(
                child.pid, paced("127.0.0.1", port, "/echo", body, None, args.rate, args.seconds)
            )
            tokens = _tokens(pem, audience, count, args.alg)
            crd = _measured(
                child.pid, paced("127.0.0.1", port, SERVICE, body, tokens, args.rate, args.seconds)
            )
            _figures(report, f"open loop @{args.rate:.0f}/s for {args.seconds:g} s", crd, echo)
            failed = failed or bool(echo["errors"] or crd["errors"])
        report.finish()
        return 1 if failed else 0
    finally:
        child.terminate()
        child.wait(timeout=10)
        jwks_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
