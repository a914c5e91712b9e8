"""Trusted CDS clients (CDS Hooks §Trusting CDS Clients) read from ``PRIORGATE_CDS_TRUSTED_ISSUERS_FILE``.

The file is a JSON list; each entry names a client's ``iss`` and its keys: ``jwks_url`` or an inline
``jwks``, optionally ``allowed_jku`` (the only ``jku`` URLs honoured for that issuer) and
``algorithms`` (default ES384 and RS384).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from cds_hooks import TrustedIssuer
from igs.outcome import Failure, OperationOutcomeError


def _bad(path: Path, message: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.INTERNAL, f"trusted CDS clients file {path}: {message}")


def _issuer(path: Path, index: int, entry: Any) -> TrustedIssuer:
    if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str):
        raise _bad(path, f"entry {index} needs an 'iss' string")
    options: dict[str, Any] = {"iss": entry["iss"]}
    if "jwks_url" in entry:
        options["jwks_url"] = str(entry["jwks_url"])
    if "jwks" in entry:
        options["jwks"] = entry["jwks"]
    if "allowed_jku" in entry:
        options["allowed_jku"] = frozenset(str(url) for url in entry["allowed_jku"])
    if "algorithms" in entry:
        options["algorithms"] = frozenset(str(alg) for alg in entry["algorithms"])
    try:
        return TrustedIssuer(**options)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"entry {index} ({entry['iss']}): {exc}") from None


def load_trusted_issuers(path: Path | None) -> list[TrustedIssuer]:
    """The trusted CDS clients, or none when no file is configured (then every call is refused)."""
    if path is None:
        return []
    try:
        entries = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise _bad(path, str(exc)) from None
    if not isinstance(entries, list):
        raise _bad(path, "expected a JSON list of clients")
    return [_issuer(path, index, entry) for index, entry in enumerate(entries)]
