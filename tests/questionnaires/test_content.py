"""Content integrity: every file parses, every canonical resolves, ELM is current, contract canonicals."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tomllib
from pathlib import Path

import orjson
import pytest

from igs.outcome import OperationOutcomeError
from questionnaires import BASE, Catalog, load_catalog
from questionnaires.catalog import CONTENT_ROOT

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
CPT = "http://www.ama-assn.org/go/cpt"
CONTRACT = {
    (CPT, "72148"): "lumbar-spine-mri",
    (CPT, "72149"): "lumbar-spine-mri",
    (CPT, "72158"): "lumbar-spine-mri",
    (CPT, "74150"): "ct-abdomen",
    (CPT, "74160"): "ct-abdomen",
    (CPT, "74170"): "ct-abdomen",
    (HCPCS, "E0601"): "cpap",
    (HCPCS, "E1390"): "home-oxygen",
    (HCPCS, "J1745"): "biologic-infusion",
    (CPT, "27447"): "total-knee-arthroplasty",
}


def test_contract_canonicals_resolve_at_content_version(catalog: Catalog) -> None:
    for topic in {*CONTRACT.values(), "home-oxygen-adaptive"}:
        assert catalog.questionnaire_key(f"{BASE}/Questionnaire/{topic}|1.0.0") is not None, topic


def test_service_codes_select_the_contract_questionnaires(catalog: Catalog) -> None:
    for coding, topic in CONTRACT.items():
        ids = {catalog.questionnaires[key]["id"] for key in catalog.questionnaires_for_codes(iter([coding]))}
        assert topic in ids
    assert catalog.questionnaires_for_codes(iter([(CPT, "99213"), (CPT, "71046")])) == []


def test_libraries_carry_cql_and_elm_with_unique_names(catalog: Catalog) -> None:
    names = [lib["name"] for lib in catalog.libraries.values()]
    assert len(names) == len(set(names)) == 8
    for lib in catalog.libraries.values():
        content = {c["contentType"]: base64.b64decode(c["data"]) for c in lib["content"]}
        assert set(content) == {"text/cql", "application/elm+json"}
        assert content["text/cql"].decode().startswith("library ")
        assert orjson.loads(content["application/elm+json"])["library"]["identifier"]["id"] == lib["name"]


def test_topic_libraries_declare_dependencies_and_data_requirements(catalog: Catalog) -> None:
    lib = catalog.libraries[(f"{BASE}/Library/HomeOxygenPrepopulation", "1.0.0")]
    assert {a["resource"] for a in lib["relatedArtifact"]} == {
        f"{BASE}/Library/FHIRHelpers|4.0.1",
        f"{BASE}/Library/DTRHelpers|1.0.0",
    }
    types = {req["type"] for req in lib["dataRequirement"]}
    assert {"Condition", "Observation"} <= types


def test_questionnaires_use_sdc_prepopulation_features(catalog: Catalog) -> None:
    text = orjson.dumps(list(catalog.questionnaires.values())).decode()
    for feature in (
        "sdc-questionnaire-initialExpression",
        "sdc-questionnaire-candidateExpression",
        "sdc-questionnaire-calculatedExpression",
        "sdc-questionnaire-enableWhenExpression",
        "sdc-questionnaire-launchContext",
        "StructureDefinition/variable",
        "enableWhen",
        "answerValueSet",
        '"required":true',
    ):
        assert feature in text, feature


def test_broken_reference_fails_the_load(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    path = root / "cpap" / "Questionnaire-cpap.json"
    path.write_bytes(path.read_bytes().replace(b"/Library/CPAPPrepopulation", b"/Library/Missing"))
    with pytest.raises(OperationOutcomeError) as raised:
        load_catalog(root)
    assert "cqf-library https://priorgate.org/fhir/Library/Missing does not resolve" in raised.value.message


def test_unparsable_file_fails_the_load(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    (root / "cpap" / "ValueSet-broken.json").write_text("{not json")
    with pytest.raises(OperationOutcomeError, match="not valid JSON"):
        load_catalog(root)


def test_committed_elm_is_current(node_toolchain: Path) -> None:
    done = subprocess.run(
        ["node", str(node_toolchain / "compile.mjs"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_prepopulated_read_only_item_fails_the_load(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    path = root / "cpap" / "Questionnaire-cpap.json"
    questionnaire = orjson.loads(path.read_bytes())
    questionnaire["item"][1]["item"][0]["readOnly"] = True
    path.write_bytes(orjson.dumps(questionnaire))
    with pytest.raises(
        OperationOutcomeError, match="osa-diagnosis is prepopulated from the EHR and read-only"
    ):
        load_catalog(root)


def test_crd_policies_name_only_questionnaires_we_serve(catalog: Catalog) -> None:
    """CRD -> DTR contract: every questionnaire a CRD coverage rule names resolves here at its version."""
    policies = sorted((Path(__file__).resolve().parents[2] / "cds_hooks" / "policies").glob("*.toml"))
    assert policies, "no CRD policy files found"
    named = {q for path in policies for q in _questionnaires(tomllib.loads(path.read_text()))}
    assert named
    assert {q for q in named if catalog.questionnaire_key(q) is None} == set()


def _questionnaires(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [q for q in node.get("questionnaires", []) if isinstance(q, str)]
        return found + [q for value in node.values() for q in _questionnaires(value)]
    if isinstance(node, list):
        return [q for value in node for q in _questionnaires(value)]
    return []


def test_own_answer_codes_must_exist_in_the_code_system(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    path = root / "home-oxygen" / "ValueSet-oxygen-test-conditions.json"
    path.write_bytes(path.read_bytes().replace(b'"exertion"', b'"exercise"'))
    with pytest.raises(OperationOutcomeError, match="oxygen-test-conditions: exercise does not match"):
        load_catalog(root)


def test_answer_code_system_is_loaded(catalog: Catalog) -> None:
    codesystem = catalog.codesystems[(f"{BASE}/CodeSystem/dtr-answers", "1.0.0")]
    assert codesystem["count"] == len(codesystem["concept"])
