"""The tenant rule: own organization only, 404 across tenants, roles widen reads, audit is read-only."""

from __future__ import annotations

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.security import (
    Principal,
    ensure_readable,
    ensure_writable,
    not_found_error,
    parse_scopes,
    read_filter,
    write_tenant,
)

SCOPES = parse_scopes("system/*.cruds").resource_scopes


def _principal(*tenants: str, roles: tuple[str, ...] = ()) -> Principal:
    return Principal(client_id="c", tenants=frozenset(tenants), scopes=SCOPES, roles=frozenset(roles))


def test_submitter_filter_is_its_own_tenants_in_sql_order():
    f = read_filter(_principal("org-b", "org-a"), "Claim")
    assert f.sql_values() == ("org-a", "org-b")
    assert f.admits("org-a") and not f.admits("org-c") and not f.admits(None)


def test_shared_content_adds_the_publisher_tenant():
    assert read_filter(_principal("org-a"), "Questionnaire").sql_values() == ("", "org-a")
    assert read_filter(_principal("org-a"), "Claim").sql_values() == ("org-a",)


def test_cross_tenant_read_is_404_identical_to_absent():
    with pytest.raises(OperationOutcomeError) as other_tenant:
        ensure_readable(_principal("org-a"), "Claim", "42", "org-b")
    absent = not_found_error("Claim", "42")
    assert other_tenant.value.failure is Failure.NOT_FOUND
    assert other_tenant.value.to_fhir() == absent.to_fhir()


def test_own_tenant_read_passes():
    ensure_readable(_principal("org-a"), "ClaimResponse", "1", "org-a")


@pytest.mark.parametrize(
    ("roles", "resource_type", "unrestricted"),
    [
        (("reviewer",), "Claim", True),
        (("reviewer",), "AuditEvent", False),
        (("auditor",), "AuditEvent", True),
        (("auditor",), "Claim", False),
        (("admin",), "Subscription", True),
        ((), "AuditEvent", False),
        ((), "Subscription", False),
    ],
)
def test_roles_widen_reads(roles, resource_type, unrestricted):
    assert read_filter(_principal("payer", roles=roles), resource_type).unrestricted is unrestricted


def test_principal_without_tenants_sees_nothing():
    f = read_filter(_principal(), "Claim")
    assert f.sql_values() == ()
    assert not f.admits("org-a")


def test_audit_events_are_never_writable_even_by_admin():
    with pytest.raises(OperationOutcomeError) as exc:
        write_tenant(_principal("payer", roles=("admin",)), "AuditEvent")
    assert exc.value.failure is Failure.METHOD_NOT_ALLOWED
    with pytest.raises(OperationOutcomeError):
        ensure_writable(_principal("payer", roles=("admin",)), "AuditEvent", "1", "payer")


def test_shared_content_writable_only_by_admin():
    with pytest.raises(OperationOutcomeError) as exc:
        write_tenant(_principal("org-a"), "Questionnaire")
    assert exc.value.failure is Failure.FORBIDDEN
    assert write_tenant(_principal("payer", roles=("admin",)), "Questionnaire") == ""


def test_write_tenant_defaults_to_the_only_tenant_and_requires_a_choice_otherwise():
    assert write_tenant(_principal("org-a"), "Claim") == "org-a"
    assert write_tenant(_principal("org-a", "org-b"), "Claim", "org-b") == "org-b"
    with pytest.raises(OperationOutcomeError) as several:
        write_tenant(_principal("org-a", "org-b"), "Claim")
    assert several.value.failure is Failure.UNPROCESSABLE
    with pytest.raises(OperationOutcomeError) as foreign:
        write_tenant(_principal("org-a"), "Claim", "org-b")
    assert foreign.value.failure is Failure.FORBIDDEN


def test_update_of_another_tenants_resource_is_404_and_reviewer_may_write_decisions():
    with pytest.raises(OperationOutcomeError) as exc:
        ensure_writable(_principal("org-a"), "Claim", "9", "org-b")
    assert exc.value.failure is Failure.NOT_FOUND
    ensure_writable(_principal("payer", roles=("reviewer",)), "ClaimResponse", "9", "org-b")
    with pytest.raises(OperationOutcomeError) as reviewer_claim:
        ensure_writable(_principal("payer", roles=("reviewer",)), "Claim", "9", "org-b")
    assert reviewer_claim.value.failure is Failure.FORBIDDEN
