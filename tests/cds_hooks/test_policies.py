from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cds_hooks.policies import DEMO_POLICY_DIR
from cds_hooks.policy import is_stale, load_policies
from igs.outcome import OperationOutcomeError

TOPICS = {
    "lumbar-spine-mri",
    "ct-abdomen",
    "cpap",
    "home-oxygen",
    "biologic-infusion",
    "total-knee-arthroplasty",
    "no-auth-services",
}


def test_demo_policies_cover_the_shared_topics_with_versioned_questionnaires() -> None:
    policies = load_policies(DEMO_POLICY_DIR)
    payer = policies.payers["PGDEMO"]
    assert payer.name == "PriorGate Demo Health Plan"
    assert {r.topic for r in payer.rules} == TOPICS
    for rule in payer.rules:
        for q in rule.default.questionnaires or []:
            canonical, version = q.split("|")
            assert (
                canonical == f"https://priorgate.org/fhir/Questionnaire/{rule.topic}"
                or canonical.startswith("https://priorgate.org/fhir/Questionnaire/home-oxygen")
            )
            assert version == "1.0.0"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_broken_rule_file_names_file_and_field(tmp_path: Path) -> None:
    text = (
        (DEMO_POLICY_DIR / "pgdemo.toml")
        .read_text()
        .replace('pa_needed = "auth-needed"', 'pa_needed = "maybe"', 1)
    )
    with pytest.raises(OperationOutcomeError) as err:
        load_policies(_write(tmp_path, text))
    assert "broken.toml" in err.value.message
    assert "pa_needed" in err.value.message


def test_code_without_system_uri_is_rejected(tmp_path: Path) -> None:
    text = (
        (DEMO_POLICY_DIR / "pgdemo.toml")
        .read_text()
        .replace(
            'system = "http://www.ama-assn.org/go/cpt", code = "99213"', 'system = "cpt", code = "99213"'
        )
    )
    with pytest.raises(OperationOutcomeError) as err:
        load_policies(_write(tmp_path, text))
    assert "rules.0.codes.0.system" in err.value.message


def test_toml_syntax_error_is_reported(tmp_path: Path) -> None:
    with pytest.raises(OperationOutcomeError) as err:
        load_policies(_write(tmp_path, "payer_id = \n"))
    assert "broken.toml" in err.value.message and "(syntax)" in err.value.message


def test_duplicate_rule_ids_rejected(tmp_path: Path) -> None:
    text = (DEMO_POLICY_DIR / "pgdemo.toml").read_text().replace('id = "ct-abdomen"', 'id = "cpap"')
    with pytest.raises(OperationOutcomeError) as err:
        load_policies(_write(tmp_path, text))
    assert "used twice" in err.value.message


def test_stale_rules_are_listed_after_review_interval() -> None:
    policies = load_policies(DEMO_POLICY_DIR)
    assert policies.stale_rules(date(2026, 11, 25)) == []
    rule = policies.payers["PGDEMO"].rules[0]
    assert is_stale(rule, date(2030, 1, 1))
    assert ("PGDEMO", rule.id) in policies.stale_rules(date(2030, 1, 1))
