"""The completion manifest (Bulk Data 2.0 "Response - Complete Status")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.storage.repository import instant

from .codes import FILE_PATH, STATUS_PATH
from .jobs import Job, OutputFile


def status_url(base: str, job_id: str) -> str:
    return f"{base}/{STATUS_PATH}/{job_id}"


def file_url(base: str, file_id: str) -> str:
    return f"{base}/{FILE_PATH}/{file_id}"


def manifest(job: Job, files: Sequence[OutputFile], *, requires_access_token: bool) -> dict[str, Any]:
    """transactionTime, request, requiresAccessToken, one ``output`` entry per file, ``error`` (none:
    consent exclusions are not errors and are not disclosed)."""
    return {
        "transactionTime": instant(job.transaction_time or job.created),
        "request": job.request,
        "requiresAccessToken": requires_access_token,
        "output": [
            {"type": f.resource_type, "url": file_url(job.base, f.file_id), "count": f.count} for f in files
        ],
        "error": [],
    }
