from pathlib import Path

import httpx

from conformance.framework import CheckFailed, Outcome, Suite, Target, check, expect_status, run_suite
from conformance.requirements import coverage_csv, load_requirements
from conformance.suites import SUITES

ROOT = Path(__file__).resolve().parents[2]


def test_committed_coverage_report_is_current() -> None:
    committed = (ROOT / "conformance" / "coverage.csv").read_text(encoding="utf-8")
    assert committed == coverage_csv(SUITES.values()), (
        "run: python -m conformance --coverage > conformance/coverage.csv"
    )


def test_every_cited_requirement_is_defined() -> None:
    known = load_requirements()
    cited = {req for suite in SUITES.values() for item in suite.checks for req in item.requirements}
    assert cited, "no check cites a requirement"
    assert cited <= known.keys(), f"undefined requirement ids: {sorted(cited - known.keys())}"


def test_check_ids_are_unique_within_a_suite() -> None:
    for suite in SUITES.values():
        ids = [item.id for item in suite.checks]
        assert len(ids) == len(set(ids)), suite.name


def test_runner_reports_pass_fail_and_error() -> None:
    @check("ok", "answers 200", "fhir-r4-http#read")
    def ok(target: Target) -> None:
        expect_status(target.get("/ok"), 200)

    @check("fails", "answers 200 on /missing", "fhir-r4-http#read")
    def fails(target: Target) -> None:
        expect_status(target.get("/missing"), 200)

    @check("crashes", "raises", "fhir-r4-http#read")
    def crashes(target: Target) -> None:
        raise RuntimeError("boom")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.path == "/ok" else 404, json={})

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://test")
    results = run_suite(Suite("t", "t", (ok, fails, crashes)), Target(client=client))
    assert [r.outcome for r in results] == [Outcome.PASS, Outcome.FAIL, Outcome.ERROR]
    assert "answered 404" in results[1].message
    assert results[2].message == "RuntimeError: boom"


def test_expect_status_raises_check_failed() -> None:
    request = httpx.Request("GET", "http://test/x")
    try:
        expect_status(httpx.Response(500, request=request, text="oops"), 200)
    except CheckFailed as exc:
        assert "answered 500" in str(exc)
    else:
        raise AssertionError("expect_status accepted a 500")


def test_committed_requirement_files_match_the_suites_rows() -> None:
    from conformance.suites import crd_server, dtr_payer, member_access, pas_server, payer_apis

    folder = ROOT / "conformance" / "requirements"
    for name, module in (
        ("davinci-crd", crd_server),
        ("davinci-dtr", dtr_payer),
        ("davinci-pas", pas_server),
        ("member-access", member_access),
        ("payer-apis", payer_apis),
    ):
        committed = (folder / f"{name}.csv").read_text(encoding="utf-8")
        assert committed == module.requirements_csv(), f"regenerate conformance/requirements/{name}.csv"
