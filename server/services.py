"""The per-app service container built by ``create_app``: settings, engine, repository, capabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from starlette.requests import Request

from igs import Registry, Validator
from questionnaires import Catalog
from server.capabilities import Capabilities
from server.coverage_assertions import CoverageAssertionStore
from server.pas.delivery import DeliveryWorker
from server.pas.service import PasService
from server.pas.subscription_store import SubscriptionStore
from server.settings import Settings
from server.storage.repository import Repository


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    repository: Repository
    capabilities: Capabilities
    now: Callable[[], datetime]
    ig_registry: Registry  # the IG packages found under PRIORGATE_IG_PATH
    validator: Validator  # profile validation ($validate, PAS, CRD, DTR); loads packages on first use
    catalog: Catalog  # DTR content: Questionnaires, Libraries, ValueSets
    assertions: CoverageAssertionStore  # CRD coverage assertions, found again by DTR and PAS
    pas: PasService  # PAS Claim/$submit, Claim/$inquire and the review queue, over storage
    subscriptions: SubscriptionStore | None = None  # PAS Subscriptions and their notification outbox
    delivery: DeliveryWorker | None = None  # this process's notification delivery worker, when running

    def fhir_base(self, request: Request) -> str:
        """The FHIR base URL: ``PRIORGATE_BASE_URL`` + ``/fhir``, or the request's own origin."""
        base = self.settings.base_url or str(request.base_url)
        return base.rstrip("/") + "/fhir"


def services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    found = request.app.state.services
    assert isinstance(found, Services)
    return found
