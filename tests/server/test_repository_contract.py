"""Repository contract: the same behaviour on SQLite and PostgreSQL (storage, versions, search index)."""

from __future__ import annotations

from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.storage.repository import Repository


def patient(family: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": family}],
        "name": [{"family": family, "given": ["Test"]}],
        "gender": "female",
        "birthDate": "1980-05-17",
        **extra,
    }


def search_ids(repo: Repository, resource_type: str, **params: str) -> list[str]:
    query = repo.parse_search(resource_type, list(params.items()), strict=True)
    return sorted(m.id for m in repo.search(query).matches)


def test_create_assigns_id_version_and_meta(repository: Repository) -> None:
    result = repository.create("Patient", patient("Alpha", id="client-chosen"))
    stored = result.stored
    body = stored.resource()
    assert result.created
    assert stored.id != "client-chosen" and body["id"] == stored.id
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].startswith("2026-03-01T12:00:00.")
    assert repository.read("Patient", stored.id).raw == stored.raw


def test_decimals_come_back_byte_identical(repository: Repository) -> None:
    from server.fhir_json import loads

    raw = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueQuantity":{"value":1.50},"component":[{"code":{"text":"y"},'
        b'"valueQuantity":{"value":0.1000000000000000055511151231257827}}]}'
    )
    stored = repository.create("Observation", loads(raw)).stored
    again = repository.read("Observation", stored.id).raw
    assert b'"value":1.50}' in again
    assert b'"value":0.1000000000000000055511151231257827}' in again


def test_update_versions_and_if_match(repository: Repository) -> None:
    first = repository.create("Patient", patient("Beta")).stored
    body = {**first.resource(), "gender": "male"}
    second = repository.update("Patient", first.id, body, if_match='W/"1"')
    assert not second.created and second.stored.version_id == 2
    with pytest.raises(OperationOutcomeError) as stale:
        repository.update("Patient", first.id, body, if_match='W/"1"')
    assert stale.value.failure is Failure.PRECONDITION_FAILED
    assert repository.vread("Patient", first.id, "1").resource()["gender"] == "female"
    assert repository.read("Patient", first.id).resource()["gender"] == "male"
    assert [v.version_id for v in repository.history("Patient", first.id)] == [2, 1]


def test_update_with_client_id_creates(repository: Repository) -> None:
    result = repository.update("Patient", "p-123", {**patient("Gamma"), "id": "p-123"})
    assert result.created and result.stored.version_id == 1
    with pytest.raises(OperationOutcomeError) as mismatch:
        repository.update("Patient", "p-123", {**patient("Gamma"), "id": "other"})
    assert mismatch.value.failure is Failure.INVALID


def test_delete_then_read_is_gone_and_history_keeps_it(repository: Repository) -> None:
    stored = repository.create("Patient", patient("Delta")).stored
    deleted = repository.delete("Patient", stored.id)
    assert deleted is not None and deleted.version_id == 2
    assert repository.delete("Patient", stored.id) is None
    with pytest.raises(OperationOutcomeError) as gone:
        repository.read("Patient", stored.id)
    assert gone.value.failure is Failure.GONE
    assert [v.deleted for v in repository.history("Patient", stored.id)] == [True, False]
    assert search_ids(repository, "Patient", family="Delta") == []
    with pytest.raises(OperationOutcomeError) as unknown:
        repository.read("Patient", "never-there")
    assert unknown.value.failure is Failure.NOT_FOUND


def test_conditional_create(repository: Repository) -> None:
    first = repository.create("Patient", patient("Eps"))
    again = repository.create("Patient", patient("Eps"), if_none_exist="identifier=urn:test:mrn|Eps")
    assert not again.created and again.stored.id == first.stored.id
    repository.create("Patient", patient("Eps2", identifier=[{"system": "urn:test:mrn", "value": "Eps"}]))
    with pytest.raises(OperationOutcomeError) as many:
        repository.create("Patient", patient("Eps"), if_none_exist="identifier=urn:test:mrn|Eps")
    assert many.value.failure is Failure.PRECONDITION_FAILED


def test_token_search_forms(repository: Repository) -> None:
    a = repository.create("Patient", patient("Tok")).stored.id
    b = repository.create(
        "Patient", {**patient("Tok"), "identifier": [{"value": "no-system"}], "gender": "male"}
    ).stored.id
    assert search_ids(repository, "Patient", identifier="urn:test:mrn|Tok") == [a]
    assert search_ids(repository, "Patient", identifier="Tok") == [a]
    assert search_ids(repository, "Patient", identifier="|no-system") == [b]
    assert search_ids(repository, "Patient", identifier="urn:test:mrn|") == [a]
    assert search_ids(repository, "Patient", gender="male,female") == sorted([a, b])
    assert search_ids(repository, "Patient", **{"gender:not": "male"}) == [a]
    assert search_ids(repository, "Patient", _id=a) == [a]


def test_string_search_is_prefix_case_and_accent_insensitive(repository: Repository) -> None:
    a = repository.create("Patient", patient("Müller")).stored.id
    assert search_ids(repository, "Patient", family="mull") == [a]
    assert search_ids(repository, "Patient", name="MÜLLER") == [a]
    assert search_ids(repository, "Patient", **{"family:exact": "Müller"}) == [a]
    assert search_ids(repository, "Patient", **{"family:exact": "muller"}) == []
    assert search_ids(repository, "Patient", **{"family:contains": "ll"}) == [a]
    assert search_ids(repository, "Patient", family="ller") == []
    assert search_ids(repository, "Patient", family="100%") == []


def test_index_is_rewritten_on_update(repository: Repository) -> None:
    stored = repository.create("Patient", patient("Before")).stored
    repository.update("Patient", stored.id, {**stored.resource(), "name": [{"family": "After"}]})
    assert search_ids(repository, "Patient", family="Before") == []
    assert search_ids(repository, "Patient", family="After") == [stored.id]


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("1980-05-17", True),
        ("1980-05", True),
        ("1980", True),
        ("eq1980-05-18", False),
        ("ne1980-05-17", False),
        ("ge1980-05-17", True),
        ("gt1980-05-17", False),
        ("gt1980-05-16", True),
        ("le1980-05-17", True),
        ("lt1980-05-17", False),
        ("lt1980-05-18", True),
        ("sa1980-05-16", True),
        ("sa1980-05-17", False),
        ("eb1980-05-18", True),
        ("eb1980-05-17", False),
        ("ap1980-05-20", True),
        ("ap2000-01-01", False),
    ],
)
def test_date_prefixes(repository: Repository, value: str, matches: bool) -> None:
    stored = repository.create("Patient", patient("Dated")).stored
    assert search_ids(repository, "Patient", birthdate=value) == ([stored.id] if matches else [])


def test_date_ranges_from_periods_and_datetimes(repository: Repository) -> None:
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient/x"},
        "payor": [{"reference": "Organization/y"}],
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
    }
    cid = repository.create("Coverage", coverage).stored.id
    claim_id = repository.create(
        "Claim",
        {
            "resourceType": "Claim",
            "status": "active",
            "patient": {"reference": "Patient/x"},
            "created": "2026-02-03T10:00:00-05:00",
        },
    ).stored.id
    assert search_ids(repository, "Claim", created="ge2026-02-03T15:00:00Z") == [claim_id]
    assert search_ids(repository, "Claim", created="gt2026-02-03T15:00:00Z") == []
    assert search_ids(repository, "Claim", created="2026-02-03") == [claim_id]
    assert search_ids(repository, "Coverage", status="active", beneficiary="Patient/x") == [cid]


def test_last_updated_and_reference_search(repository: Repository) -> None:
    pid = repository.create("Patient", patient("Ref")).stored.id
    claim = {"resourceType": "Claim", "status": "active", "patient": {"reference": f"Patient/{pid}"}}
    first = repository.create("Claim", claim).stored
    second = repository.create("Claim", {**claim, "status": "draft"}).stored
    assert search_ids(repository, "Claim", patient=pid) == sorted([first.id, second.id])
    assert search_ids(repository, "Claim", patient=f"Patient/{pid}", status="draft") == [second.id]
    assert search_ids(repository, "Claim", patient="Patient/other") == []
    stamp = f"{first.last_updated}Z"
    assert search_ids(repository, "Claim", _lastUpdated=f"gt{stamp}") == [second.id]
    assert search_ids(repository, "Claim", **{"patient:missing": "false"}) == sorted([first.id, second.id])


def test_paging_is_stable_and_complete(repository: Repository) -> None:
    ids = {
        repository.create("Patient", patient(f"Page{n}", name=[{"family": "Pager"}])).stored.id
        for n in range(7)
    }
    seen: list[str] = []
    offset = 0
    while True:
        query = repository.parse_search(
            "Patient", [("family", "Pager"), ("_count", "3"), ("_offset", str(offset))]
        )
        page = repository.search(query)
        assert page.total == 7
        seen += [m.id for m in page.matches]
        if not page.has_next:
            break
        offset += 3
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_include_and_revinclude(repository: Repository) -> None:
    pid = repository.create("Patient", patient("Inc")).stored.id
    claim = repository.create(
        "Claim", {"resourceType": "Claim", "status": "active", "patient": {"reference": f"Patient/{pid}"}}
    ).stored
    response = repository.create(
        "ClaimResponse",
        {"resourceType": "ClaimResponse", "status": "active", "request": {"reference": f"Claim/{claim.id}"}},
    ).stored
    query = repository.parse_search(
        "ClaimResponse", [("request", claim.id), ("_include", "ClaimResponse:request")]
    )
    page = repository.search(query)
    assert [m.id for m in page.matches] == [response.id]
    assert [(i.resource_type, i.id) for i in page.included] == [("Claim", claim.id)]
    query = repository.parse_search(
        "Claim", [("_id", claim.id), ("_include", "Claim:patient"), ("_revinclude", "ClaimResponse:request")]
    )
    included = {(i.resource_type, i.id) for i in repository.search(query).included}
    assert included == {("Patient", pid), ("ClaimResponse", response.id)}


def test_summary_count_and_unknown_params(repository: Repository) -> None:
    repository.create("Patient", patient("Cnt"))
    page = repository.search(repository.parse_search("Patient", [("_summary", "count")]))
    assert page.total == 1 and page.matches == ()
    lenient = repository.parse_search("Patient", [("nonsense", "1"), ("family", "Cnt")])
    assert lenient.ignored == ("nonsense",)
    assert len(repository.search(lenient).matches) == 1
    with pytest.raises(OperationOutcomeError) as strict:
        repository.parse_search("Patient", [("nonsense", "1")], strict=True)
    assert strict.value.failure is Failure.INVALID


def test_write_transaction_rolls_back_as_a_whole(repository: Repository) -> None:
    with pytest.raises(OperationOutcomeError), repository.writing() as tx:
        tx.create("Patient", patient("Atomic"))
        tx.read("Patient", "missing")
    assert search_ids(repository, "Patient", family="Atomic") == []


def test_unknown_type_is_not_found(repository: Repository) -> None:
    with pytest.raises(OperationOutcomeError) as error:
        repository.create("NotAType", {"resourceType": "NotAType"})
    assert error.value.failure is Failure.NOT_FOUND


def test_chained_search(repository: Repository) -> None:
    pid = repository.create("Patient", patient("Chain")).stored.id
    other = repository.create("Patient", patient("Other")).stored.id
    claim = {"resourceType": "Claim", "status": "active", "patient": {"reference": f"Patient/{pid}"}}
    mine = repository.create("Claim", claim).stored.id
    repository.create("Claim", {**claim, "patient": {"reference": f"Patient/{other}"}})
    assert search_ids(repository, "Claim", **{"patient.identifier": "urn:test:mrn|Chain"}) == [mine]
    assert search_ids(repository, "Claim", **{"patient:Patient.family": "chain"}) == [mine]
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    obs = repository.create(
        "Observation", {**observation, "subject": {"reference": f"Patient/{pid}"}}
    ).stored.id
    assert search_ids(repository, "Observation", **{"subject.name": "chain"}) == [obs]
    query = repository.parse_search("Claim", [("patient.identifier", "urn:test:mrn|Chain")])
    assert ("patient.identifier", "urn:test:mrn|Chain") in query.link_params()
    with pytest.raises(OperationOutcomeError):
        repository.parse_search("Claim", [("patient.nonsense", "x")], strict=True)


def test_sort_by_parameters(repository: Repository) -> None:
    made = {}
    for family, born in (("Cole", "1990-01-01"), ("Abel", "1970-01-01"), ("Bose", "1980-01-01")):
        made[family] = repository.create("Patient", {**patient(family), "birthDate": born}).stored.id
    repository.create("Patient", {"resourceType": "Patient", "identifier": [{"value": "nobody"}]})

    def order(sort: str) -> list[str]:
        query = repository.parse_search(
            "Patient", [("_sort", sort), ("identifier", "urn:test:mrn|")], strict=True
        )
        return [m.id for m in repository.search(query).matches]

    assert order("family") == [made["Abel"], made["Bose"], made["Cole"]]
    assert order("-birthdate") == [made["Cole"], made["Bose"], made["Abel"]]
    assert order("-_lastUpdated") == [made["Bose"], made["Abel"], made["Cole"]]
    everyone = repository.parse_search("Patient", [("_sort", "birthdate")])
    assert len(repository.search(everyone).matches) == 4  # the one without a birthDate sorts last
    assert repository.search(everyone).matches[-1].resource()["identifier"][0]["value"] == "nobody"
    with pytest.raises(OperationOutcomeError):
        repository.parse_search("Patient", [("_sort", "organization")], strict=True)
