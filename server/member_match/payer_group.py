"""The requesting payer's Payer-to-Payer Group: every member a payer matched with ``$member-match``.

One Group per requesting payer organization, created on its first match (PDex 2.0.0 leaves the member
list of a Payer-to-Payer bulk request to the payers; later PDex versions return a Group of matched members
from ``$multi-member-match``; this is that Group, filled one ``$member-match`` at a time):

* ``type`` person, ``actual`` true, ``code`` :data:`~server.bulk.codes.EXPORT_PURPOSE_SYSTEM`
  ``payer-to-payer``, ``managingEntity`` ``Organization/<requesting payer>``, ``member.entity`` the
  matched Patients (each once: matching a member again adds nothing);
* stored in the requesting payer's tenant, so that payer reads it, finds it with
  ``GET /fhir/Group?managing-entity=Organization/<id>&code=<system>|payer-to-payer`` and may export it
  (``server/bulk/groups.py``: a caller acting for the managing Organization); no other payer sees it.
  Written by the server, never through the API (Groups stay a payer-administrator type there);
* its id is derived from the organization id (:func:`group_id`), so one payer has one Group.

What the export discloses is still decided per member by the member's Consent (``server/consent``).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from server.bulk.codes import EXPORT_PURPOSE_SYSTEM, Purpose
from server.storage.repository import Repository, StoredResource, Transaction

Json = dict[str, Any]

# Namespace of the Group ids (uuid5 of the organization id): stable, valid FHIR ids, unique per payer.
_GROUP_IDS: Final = uuid.UUID("5b0c3c52-6f4e-4d0a-9a57-2f0f4c1c6a11")


def group_id(organization: str) -> str:
    """The id of ``organization``'s Payer-to-Payer Group."""
    return str(uuid.uuid5(_GROUP_IDS, f"payer-to-payer|{organization}"))


def new_group(organization: str) -> Json:
    return {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "code": {
            "coding": [
                {
                    "system": EXPORT_PURPOSE_SYSTEM,
                    "code": Purpose.PAYER_TO_PAYER.value,
                    "display": "Payer-to-Payer",
                }
            ]
        },
        "name": f"Members matched by Organization/{organization}",
        "managingEntity": {"reference": f"Organization/{organization}"},
        "member": [],
    }


def _has_member(group: Json, patient_reference: str) -> bool:
    return any(
        isinstance(m, dict) and (m.get("entity") or {}).get("reference") == patient_reference
        for m in group.get("member") or ()
    )


def record_matched_member(
    tx: Transaction, repository: Repository, organization: str, patient_reference: str, tenant: str
) -> StoredResource:
    """Add ``patient_reference`` to ``organization``'s Payer-to-Payer Group (created when absent) kept in
    ``tenant`` (the organization's own; without authentication the default tenant), in ``tx``; the Group
    unchanged when the member is in it already."""
    own = tx.seen_as(repository.for_tenant(tenant))
    gid = group_id(organization)
    stored = own.find("Group", gid)
    group = new_group(organization) if stored is None or stored.deleted else stored.resource()
    if stored is not None and not stored.deleted and _has_member(group, patient_reference):
        return stored
    group["id"] = gid
    group.setdefault("member", []).append({"entity": {"reference": patient_reference}})
    return own.update("Group", gid, group).stored  # creates it with this id when absent
