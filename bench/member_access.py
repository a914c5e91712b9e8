"""Member access cost: the PDex ExplanationOfBenefit built and stored with each PAS result, and
``Patient/$member-match``, in process (Starlette TestClient, SQLite, auth off).

Figures, each beside a baseline measured in the same run:

* building one ExplanationOfBenefit from a stored request, decision and ClaimResponse, against an orjson
  parse+serialize of the same Claim and ClaimResponse (an echo's work);
* ``$submit`` with the ExplanationOfBenefit stored in the same transaction, against ``$submit`` of the same
  app without it (the ratio is the Patient Access overhead on the PAS write path);
* ``$member-match`` (match, Consent stored), against ``GET /fhir/Patient?identifier=`` on the same data.

Run: ``.venv/bin/python bench/member_access.py [iterations]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _report import Figure, Report

# Run as a script, this folder comes first on sys.path, and bench/x12.py would shadow the x12 package the
# server imports: drop it (``_report`` is already loaded) and put the repository root first.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from starlette.testclient import TestClient  # noqa: E402

from conformance.suites import member_access, pas_server  # noqa: E402
from server.app import create_app  # noqa: E402
from server.pas.request import parse_pas_request  # noqa: E402
from server.pas.response import claim_response_of  # noqa: E402
from server.pas.versions import PasVersion  # noqa: E402
from server.patient_access import build_prior_auth_eob  # noqa: E402
from server.security.config import SecuritySettings  # noqa: E402
from server.services import Services  # noqa: E402
from server.settings import Settings  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MEMBER = "https://priorgate.org/fhir/sid/member"


def samples(fn: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(min(10, iterations)):
        fn()
    out = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def p50_p99(values: list[float]) -> tuple[float, float]:
    return round(statistics.median(values), 3), round(
        values[min(len(values) - 1, int(len(values) * 0.99))], 3
    )


def app(folder: Path, name: str) -> TestClient:
    settings = Settings(
        database_url=f"sqlite:///{folder / name}.db", demo_content=False, ig_path=folder / "no-igs"
    )
    return TestClient(create_app(settings, prepare_database=True, security=SecuritySettings(auth_mode="off")))


def services(client: TestClient) -> Services:
    found = client.app.state.services  # type: ignore[attr-defined]
    assert isinstance(found, Services)
    return found


def submit_once(client: TestClient) -> None:
    trace = uuid.uuid4().hex[:12].upper()
    member = {"resourceType": "Patient", "identifier": [{"system": MEMBER, "value": f"M-{trace}"}]}
    client.post("/fhir/Patient", json={**member, "birthDate": "1970-01-01"}, headers=FHIR_JSON)
    answer = client.post("/fhir/Claim/$submit", json=pas_server.request_bundle(trace, ("72148", "97110")))
    assert answer.status_code == 200, answer.text


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    report = Report(
        "member_access",
        f"in process (TestClient), SQLite, auth off, {iterations} calls per figure after warm-up; baselines: "
        "orjson echo (EOB build), $submit without Patient Access, Patient search by identifier",
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        app(Path(tmp), "with") as with_eob,
        app(Path(tmp), "without") as plain,
    ):
        svc = services(plain)
        plain.app.state.services = replace(svc, pas=replace(svc.pas, published=None))  # type: ignore[attr-defined]

        # 1. building one ExplanationOfBenefit
        trace = "BENCH1"
        bundle = pas_server.request_bundle(trace, ("72148", "97110"))
        response = with_eob.post("/fhir/Claim/$submit", json=bundle).json()
        record = (
            services(with_eob)
            .pas.store.for_tenant("")
            .find(PasVersion.V2_2_1, [f"urn:trnorg:1999999999|{trace}"])
        )
        assert record is not None
        request = parse_pas_request(bundle, PasVersion.V2_2_1)
        claim_response: dict[str, Any] = claim_response_of(response) or {}

        def build() -> object:
            return build_prior_auth_eob(
                request, record.stored.decision, claim_response, eob_id="e", patient_reference="Patient/p"
            )

        raw = orjson.dumps([bundle["entry"][0]["resource"], claim_response])
        ours, base = (
            samples(build, iterations * 10),
            samples(lambda: orjson.dumps(orjson.loads(raw)), iterations * 10),
        )
        (p50, p99), (b50, b99) = p50_p99(ours), p50_p99(base)
        report.add(
            Figure(
                "EOB build per ClaimResponse (p50)",
                "ms",
                p50,
                "orjson echo of Claim+ClaimResponse",
                b50,
                p50,
                p99,
                b50,
                b99,
            )
        )

        # 2. $submit with and without the EOB stored in the same transaction
        ours, base = (
            samples(lambda: submit_once(with_eob), iterations),
            samples(lambda: submit_once(plain), iterations),
        )
        (p50, p99), (b50, b99) = p50_p99(ours), p50_p99(base)
        report.add(
            Figure(
                "$submit + member Patient, with Patient Access (p50)",
                "ms",
                p50,
                "same without Patient Access",
                b50,
                p50,
                p99,
                b50,
                b99,
            )
        )
        eobs = with_eob.get("/fhir/ExplanationOfBenefit?_summary=count").json().get("total")
        report.note(f"ExplanationOfBenefits stored with Patient Access: {eobs}")

        # 3. $member-match against a Patient search by identifier
        member_id = f"MM-{uuid.uuid4().hex[:8]}"
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": MEMBER, "value": member_id}],
            "name": [{"family": "Conformance", "given": ["Pat"]}],
            "gender": "female",
            "birthDate": "1970-01-01",
        }
        with_eob.post("/fhir/Patient", json=patient, headers=FHIR_JSON)
        body = member_access.match_input(member_id)

        def match() -> None:
            answer = with_eob.post("/fhir/Patient/$member-match", json=body, headers=FHIR_JSON)
            assert answer.status_code == 200, answer.text

        def search() -> None:
            assert with_eob.get(f"/fhir/Patient?identifier={MEMBER}|{member_id}").status_code == 200

        ours, base = samples(match, iterations), samples(search, iterations)
        (p50, p99), (b50, b99) = p50_p99(ours), p50_p99(base)
        report.add(
            Figure("$member-match (p50)", "ms", p50, "Patient search by identifier", b50, p50, p99, b50, b99)
        )
    report.note(f"run at {datetime.now(UTC).isoformat(timespec='seconds')}")
    report.finish()


if __name__ == "__main__":
    main()
