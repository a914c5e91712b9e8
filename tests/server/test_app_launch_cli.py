"""``priorgate patients`` and ``priorgate patient-apps`` on both engines: accounts stored with an argon2id
hash and listed; apps registered into the apps file (a confidential app's secret printed once, only its
SHA-256 kept); invalid input refused with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.app_launch.accounts import AccountStore
from server.app_launch.apps import PatientApps
from server.cli import main
from server.security.keys import generate_private_key, public_jwk
from server.storage.engine import make_engine


def test_patients_add_and_list(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRIORGATE_PATIENT_PASSWORD", "a long enough password")
    base = ["patients", "--database-url", database_url]
    assert main([*base, "add", "Pat@Example.org", "--patient", "p1", "--tenant", "org-a"]) == 0
    assert main([*base, "add", "pat@example.org", "--patient", "p2", "--tenant", "org-a"]) == 2  # any case
    assert "exists" in capsys.readouterr().err
    assert main([*base, "add", "nobody", "--patient", "p2"]) == 2  # no tenant: its token would read nothing
    assert "organization id (tenant)" in capsys.readouterr().err
    assert main([*base, "add", "other", "--patient", "Patient/p3"]) == 2
    monkeypatch.setenv("PRIORGATE_PATIENT_PASSWORD", "short")
    assert main([*base, "add", "third", "--patient", "p3"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["pat@example.org\torg-a\tPatient/p1"]
    engine = make_engine(database_url)
    try:
        stored = AccountStore(engine).get("PAT@example.org")
    finally:
        engine.dispose()
    assert stored is not None and stored.password_hash.startswith("$argon2id$")


def test_patient_apps_register_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "apps.json"
    common = ["patient-apps", "register", "--file", str(path)]
    assert main([*common, "--client-id", "viewer", "--redirect-uri", "https://app.example.org/cb"]) == 0
    assert "client_secret" not in capsys.readouterr().out
    assert (
        main(
            [
                *common,
                "--client-id",
                "portal",
                "--redirect-uri",
                "https://portal.example.org/cb",
                "--confidential",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    secret = printed.split("client_secret (shown once; keep it safe): ")[1].strip()
    assert secret not in path.read_text()
    portal = PatientApps.from_file(path).get("portal")
    assert portal is not None and portal.confidential and portal.secret_matches(secret)
    assert main([*common, "--client-id", "viewer", "--redirect-uri", "https://app.example.org/cb"]) == 2
    assert "registered twice" in capsys.readouterr().err
    bad = [
        *common,
        "--client-id",
        "x",
        "--redirect-uri",
        "https://x.example.org/cb",
        "--scopes",
        "system/*.rs",
    ]
    assert main(bad) == 2
    assert main(["patient-apps", "list", "--file", str(path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["viewer", "public"], ["portal", "confidential"]]
    assert json.loads(path.read_text())["apps"][0]["scopes"] == (
        "patient/*.rs launch/patient openid fhirUser offline_access"
    )


def test_patient_apps_register_an_asymmetric_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(generate_private_key("ES384"), "ES384")]}))
    path = tmp_path / "apps.json"
    args = ["patient-apps", "register", "--file", str(path), "--client-id", "kiosk"]
    assert main([*args, "--redirect-uri", "https://kiosk.example.org/cb", "--jwks-file", str(jwks)]) == 0
    assert "client_secret" not in capsys.readouterr().out
    kiosk = PatientApps.from_file(path).get("kiosk")
    assert kiosk is not None and kiosk.confidential and kiosk.auth_method == "private_key_jwt"
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{"kty": "EC", "kid": "k", "d": "secret"}]}))
    other = ["patient-apps", "register", "--file", str(path), "--client-id", "leaky"]
    assert main([*other, "--redirect-uri", "https://l.example.org/cb", "--jwks-file", str(private)]) == 2
    assert "public keys only" in capsys.readouterr().err
