"""Demo Patient Access content (``make run``): prior authorizations for the demo member, submitted through
``Claim/$submit`` (``PasService``) by the demo clinic, so the member's PDex ExplanationOfBenefits are the
ones PriorGate really stores.

* ``DEMO-MEMBER-001``: an office visit the demo payer rules approve at once (certified, A1);
* ``DEMO-MEMBER-002``: a lumbar spine MRI the rules pend for review: it is in the review queue
  (``/ops/queue``), and a reviewer's decision updates the member's ExplanationOfBenefit.

and the member's patient login (``server/app_launch/demo.py``). Loading is idempotent: a request already
stored (by its Claim identifier) is not submitted again, nor an existing login added; and nothing is
loaded when the demo member Patient is not stored (it is demo content of an empty database: a database
from before it, or not a demo database, gets nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from server.app_launch.accounts import AccountStore
from server.app_launch.demo import load_demo_login
from server.demo import DEMO_MEMBER_ID, DEMO_MEMBER_PATIENT_ID, DEMO_MEMBER_TENANT
from server.ops.demo import CPT, SERVICES, SITES, Site, request_bundle
from server.pas.service import PasService
from server.pas.versions import PasVersion
from server.services import Services
from server.settings import Settings
from server.storage.repository import StoredResource

# The organization the demo EHR client (``demo-ehr``) acts for: the demo requests are its submissions.
DEMO_CLINIC_TENANT: Final = "org-demo-clinic"


@dataclass(frozen=True)
class MemberRequest:
    trace: str  # the Claim identifier (and Bundle identifier) the clinic gives the request
    site: Site
    codes: tuple[tuple[str, str, str], ...]  # (code system, code, X12 1365 service type)


DEMO_MEMBER_REQUESTS: Final = (
    MemberRequest("DEMO-MEMBER-001", SITES[2], ((CPT, "99213", "1"),)),  # approved at once
    MemberRequest("DEMO-MEMBER-002", SITES[0], (SERVICES[0],)),  # MRI lumbar spine: pended
)


def member_request_bundle(request: MemberRequest, member: Mapping[str, Any]) -> dict[str, Any]:
    """The PAS request Bundle of one demo request, its Patient the stored demo ``member``."""
    bundle = request_bundle(request.trace, site=request.site, codes=request.codes, member=DEMO_MEMBER_ID)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            for name in ("name", "gender", "birthDate"):
                if name in member:
                    resource[name] = member[name]
    return bundle


def demo_member(services: Services) -> StoredResource | None:
    """The stored demo member Patient, or ``None``."""
    with services.repository.for_tenant(DEMO_MEMBER_TENANT).reading() as tx:
        member = tx.find("Patient", DEMO_MEMBER_PATIENT_ID)
    return None if member is None or member.deleted else member


def load_member_requests(pas: PasService, member: StoredResource) -> int:
    """Submit the demo member's requests not stored yet, as the demo clinic; how many were submitted."""
    clinic = replace(pas.for_tenant(DEMO_CLINIC_TENANT), validate=None)
    submitted = 0
    for request in DEMO_MEMBER_REQUESTS:
        if clinic.store.find_by_trace(request.trace) is not None:
            continue
        clinic.submit(PasVersion.V2_2_1, member_request_bundle(request, member.resource()))
        submitted += 1
    return submitted


def load_patient_demo(services: Services) -> tuple[int, int]:
    """The demo member's requests and patient login, when the demo member is stored; (requests
    submitted, logins added)."""
    member = demo_member(services)
    if member is None:
        return 0, 0
    submitted = load_member_requests(services.pas, member)
    return submitted, load_demo_login(AccountStore(services.engine), services.now)


def load_app_demo(settings: Settings) -> tuple[int, int]:
    """The Patient Access demo in the database ``settings`` name (``priorgate serve`` with demo content)."""
    from server.app import create_app

    app = create_app(settings)
    try:
        services = app.state.services
        assert isinstance(services, Services)
        return load_patient_demo(services)
    finally:
        app.state.services.engine.dispose()


__all__ = [
    "DEMO_CLINIC_TENANT",
    "DEMO_MEMBER_REQUESTS",
    "load_app_demo",
    "load_member_requests",
    "load_patient_demo",
    "member_request_bundle",
]
