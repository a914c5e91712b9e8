"""Payer routing: which payers PriorGate decides itself and which it forwards as X12 278 to a legacy system.

The routes file (``PRIORGATE_PAYER_ROUTES_FILE``, JSON or TOML) lists payers by identifier value (the
Claim's insurer Organization identifier, optionally with its system)::

    [[routes]]
    payer = "PGX12"                # insurer identifier value
    system = "https://priorgate.org/fhir/sid/payer-id"   # optional: match the identifier system too
    mode = "x12"                   # or "fhir-local" (decided by PriorGate's coverage rules: the default)
    endpoint = "simulated"         # an https:// URL taking a 278 request and answering a 278 response,
                                   # or "simulated" for the built-in simulated payer
    budget = 8.0                   # seconds to wait for the answer before returning pended (< 15, PAS)
    answer_timeout = 120.0         # seconds the late answer is still awaited after that

A JSON file holds the same list (``{"routes": [...]}`` or the list itself). A payer not listed is decided
locally.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .request import PasRequest

SIMULATED = "simulated"
PAS_RESPONSE_LIMIT = 15.0  # PAS: a response within 15 seconds


class RoutesError(ValueError):
    """The routes file is unreadable or invalid; the message names the file and the problem."""


class _Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payer: str = Field(min_length=1)
    system: str | None = None
    mode: Literal["fhir-local", "x12"] = "fhir-local"
    endpoint: str | None = None
    budget: float = Field(default=8.0, gt=0, lt=PAS_RESPONSE_LIMIT)
    answer_timeout: float = Field(default=120.0, gt=0)
    name: str | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> _Route:
        if self.mode == "x12":
            if not self.endpoint:
                raise ValueError("an x12 route needs an endpoint (an http(s) URL or 'simulated')")
            if self.endpoint != SIMULATED and not self.endpoint.startswith(("https://", "http://")):
                raise ValueError(f"endpoint {self.endpoint!r} is neither an http(s) URL nor 'simulated'")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[_Route]


@dataclass(frozen=True)
class PayerRoute:
    """Where one payer's prior-authorization requests go."""

    payer: str
    mode: Literal["fhir-local", "x12"]
    endpoint: str | None = None
    system: str | None = None
    budget: float = 8.0  # seconds before PAS answers pended (the IG allows 15)
    answer_timeout: float = 120.0  # seconds a late answer is still awaited
    name: str | None = None

    @property
    def simulated(self) -> bool:
        return self.endpoint == SIMULATED


@dataclass(frozen=True)
class PayerRoutes:
    routes: tuple[PayerRoute, ...] = ()

    def x12_route(self, request: PasRequest) -> PayerRoute | None:
        """The X12 route of the request's insurer, or None when PriorGate decides it locally."""
        for ident in request.insurer.identifiers:
            for route in self.routes:
                if route.payer == ident.value and route.system in (None, ident.system):
                    return route if route.mode == "x12" else None
        return None

    def by_payer(self, payer: str) -> PayerRoute | None:
        return next((r for r in self.routes if r.payer == payer), None)


def parse_routes(raw: object, source: str = "routes") -> PayerRoutes:
    data = {"routes": raw} if isinstance(raw, list) else raw
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise RoutesError(f"{source}: {where}: {first.get('msg')}") from None
    seen: set[tuple[str, str | None]] = set()
    routes: list[PayerRoute] = []
    for r in parsed.routes:
        key = (r.payer, r.system)
        if key in seen:
            raise RoutesError(f"{source}: payer {r.payer!r} is listed twice")
        seen.add(key)
        routes.append(PayerRoute(r.payer, r.mode, r.endpoint, r.system, r.budget, r.answer_timeout, r.name))
    return PayerRoutes(tuple(routes))


def load_routes(path: Path) -> PayerRoutes:
    """Read a JSON or TOML routes file (by suffix: ``.toml`` is TOML, anything else JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutesError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        raw: object = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RoutesError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({exc})"
        ) from None
    return parse_routes(raw, str(path))
