"""PAS ``Claim/$submit`` latency and throughput beside a bare echo of the same payload.

Starts one uvicorn worker on 127.0.0.1 in a child process serving ``create_app`` (SQLite file in a
temporary directory unless ``--database-url``; no IG packages unless ``--ig-path``, so no profile
validation) plus ``POST /echo``, then drives both with a bounded number of requests at a few concurrency
levels. Every ``$submit`` is a new request (a fresh Claim identifier per call, built before timing) with
10 Bundle entries and two items (one pended for review, one approved): each call stores a submission, its
keys, a review item, the Claim and the ClaimResponse.

    .venv/bin/python bench/pas_submit.py [--requests 200] [--levels 1,8] [--timeout 120]

Reports p50/p99 latency and requests/s for both, and the $submit/echo ratio (bench/_report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _report import Figure, Report

SUBMIT = "/pas/2.2.1/Claim/$submit"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"


def bundle(trace: str) -> dict[str, Any]:
    """The conformance suite's request Bundle (Claim, Patient, insurer, requestor, Coverage) plus five
    Organizations on the care team: 10 entries, conforming to the PAS request profiles."""
    from conformance.suites import pas_server

    body = pas_server.request_bundle(trace, ("72148", "97110"))
    claim = body["entry"][0]["resource"]
    requestor = next(e for e in body["entry"] if e["fullUrl"] == claim["provider"]["reference"])
    for n in range(5):
        full_url = f"urn:uuid:{uuid.uuid4()}"
        organization = copy.deepcopy(requestor["resource"]) | {"name": f"Bench Clinic {n}"}
        body["entry"].append({"fullUrl": full_url, "resource": organization})
        claim.setdefault("careTeam", []).append(
            {
                "extension": [{"url": PAS + "extension-careTeamClaimScope", "valueBoolean": True}],
                "sequence": n + 1,
                "provider": {"reference": full_url},
            }
        )
    return body


def serve(port: int, database_url: str, ig_path: str) -> None:
    """Child process: one uvicorn worker with the PriorGate app and the echo endpoint."""
    import logging

    # Run as a script, this folder comes first on sys.path, and bench/x12.py would shadow the x12
    # package the server imports.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response

    from server.app import create_app
    from server.security.config import SecuritySettings
    from server.settings import Settings

    logging.basicConfig(level=logging.ERROR)
    settings = Settings(database_url=database_url, demo_content=False, ig_path=Path(ig_path))
    # Measures PAS processing (with its audit trail); token verification is not what is compared here.
    app = create_app(settings, prepare_database=True, security=SecuritySettings(auth_mode="off"))

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/fhir+json")

    app.router.add_route("/echo", echo, methods=["POST"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def drive(port: int, path: str, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    """Closed loop over keep-alive connections: each client sends its next body when the answer arrives."""
    latencies: list[float] = []
    errors = 0
    queue = iter(bodies)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in queue:
                request = (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                start = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - start)
                errors += status != 200
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per level and endpoint")
    parser.add_argument("--levels", default="1,8", help="closed-loop concurrency levels")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--ig-path", default="/nonexistent", help="IG packages (enables profile validation)")
    parser.add_argument("--timeout", type=float, default=120.0, help="overall bound in seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database_url, args.ig_path)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="priorgate-bench-pas-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'pas.db'}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, __file__, "--serve", str(port), "--database-url", database_url]
    child = subprocess.Popen([*command, "--ig-path", args.ig_path])
    deadline = time.monotonic() + args.timeout
    failed = False
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        template = bundle("BENCH")
        levels = [int(x) for x in args.levels.split(",") if x]
        engine = database_url.split(":")[0]
        report = Report(
            "pas_submit",
            f"$submit 2.2.1, {len(template['entry'])} entries, 2 items, {engine}, 1 uvicorn worker, "
            f"{args.requests} requests per level closed loop; baseline: FastAPI echo of the same Bundle",
        )
        for level in levels:
            if time.monotonic() > deadline:
                report.note("time bound reached; remaining levels skipped")
                break
            bodies = []
            for _ in range(args.requests):
                one = copy.deepcopy(template)
                one["entry"][0]["resource"]["identifier"][0]["value"] = uuid.uuid4().hex[:20]
                bodies.append(json.dumps(one).encode())
            asyncio.run(drive(port, "/echo", bodies[:20], level))  # warm-up
            echo = asyncio.run(drive(port, "/echo", bodies, level))
            submit = asyncio.run(drive(port, SUBMIT, bodies, level))
            report.add(
                Figure(
                    f"$submit {level} concurrent throughput",
                    "/s",
                    submit["rps"],
                    "FastAPI echo, same Bundle",
                    echo["rps"],
                    submit["p50_ms"],
                    submit["p99_ms"],
                    echo["p50_ms"],
                    echo["p99_ms"],
                    int(submit["errors"] + echo["errors"]),
                )
            )
            failed = failed or bool(echo["errors"] or submit["errors"])
        report.finish()
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
