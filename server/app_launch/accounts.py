"""Patient logins: a user name (or e-mail address) and an argon2id password, linked to one FHIR Patient
id in one tenant. Hashing is the operations pages' (``server.ops.auth.Passwords``), so an unknown user
costs the same time as a wrong password. Repeated failures lock the login for a while."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from server.ops.auth import Passwords
from server.storage.schema import patient_login

MIN_PASSWORD = 12


class AccountError(ValueError):
    """A patient login cannot be created as given; the message names the field."""


@dataclass(frozen=True)
class PatientAccount:
    username: str
    tenant: str
    patient_id: str
    display_name: str
    password_hash: str
    active: bool = True

    @property
    def patient_reference(self) -> str:
        return f"Patient/{self.patient_id}"


def normalise_username(username: str) -> str:
    """User names compare case-insensitively and without surrounding blanks."""
    return username.strip().casefold()


@dataclass(frozen=True)
class AccountStore:
    """Patient logins in the ``patient_login`` table."""

    engine: Engine

    def add(self, account: PatientAccount, created: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                patient_login.insert().values(
                    username=account.username,
                    tenant=account.tenant,
                    patient_id=account.patient_id,
                    display_name=account.display_name,
                    password_hash=account.password_hash,
                    active=account.active,
                    created=int(created.timestamp()),
                )
            )

    def get(self, username: str) -> PatientAccount | None:
        query = select(patient_login).where(patient_login.c.username == normalise_username(username))
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _account(row) if row is not None else None

    def all(self) -> list[PatientAccount]:
        query = select(patient_login).order_by(patient_login.c.username)
        with self.engine.connect() as connection:
            return [_account(r) for r in connection.execute(query).mappings().all()]

    def locked_until(self, username: str) -> int | None:
        query = select(patient_login.c.locked_until).where(patient_login.c.username == username)
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return int(found) if found is not None else None

    def record_login(self, username: str, ok: bool, *, now: int, limit: int, lock_for: int) -> None:
        """Reset the failure count on success; count a failure, locking the login at ``limit`` failures."""
        key = patient_login.c.username == username
        with self.engine.begin() as connection:
            if ok:
                connection.execute(
                    update(patient_login).where(key).values(failed_logins=0, locked_until=None)
                )
                return
            connection.execute(
                update(patient_login).where(key).values(failed_logins=patient_login.c.failed_logins + 1)
            )
            failed = connection.execute(select(patient_login.c.failed_logins).where(key)).scalar_one_or_none()
            if failed is not None and failed >= limit:
                connection.execute(
                    update(patient_login).where(key).values(failed_logins=0, locked_until=now + lock_for)
                )

    def set_password_hash(self, username: str, password_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(patient_login)
                .where(patient_login.c.username == username)
                .values(password_hash=password_hash)
            )


def _account(row: object) -> PatientAccount:
    r = dict(row)  # type: ignore[call-overload]
    return PatientAccount(
        r["username"], r["tenant"], r["patient_id"], r["display_name"], r["password_hash"], bool(r["active"])
    )


def new_account(
    username: str,
    *,
    tenant: str,
    patient_id: str,
    password: str,
    passwords: Passwords,
    display_name: str = "",
) -> PatientAccount:
    """Validate and build a patient login (the CLI's ``patients add``); raises :class:`AccountError`."""
    name = normalise_username(username)
    if not name or len(name) > 128 or any(c.isspace() for c in name):
        raise AccountError("the user name must be 1 to 128 characters without spaces")
    if not patient_id or len(patient_id) > 64 or "/" in patient_id:
        raise AccountError("the patient id must be a FHIR id (without 'Patient/')")
    if len(tenant) > 64:
        raise AccountError("the tenant (organization id) has at most 64 characters")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a patient password has at least {MIN_PASSWORD} characters")
    if not tenant.strip():  # a token without a tenant reads nothing: the login would be useless
        raise AccountError("a patient login needs the organization id (tenant) that holds the patient's data")
    return PatientAccount(name, tenant, patient_id, display_name or name, passwords.hash(password))


@dataclass(frozen=True)
class PatientLogins:
    """Checks a patient's credentials, with lockout after ``attempts`` failures in a row."""

    store: AccountStore
    passwords: Passwords
    now: Callable[[], datetime]
    attempts: int = 5
    lockout: timedelta = timedelta(minutes=15)

    def login(self, username: str, password: str) -> PatientAccount | None:
        """The account for good credentials of an active, unlocked login, else ``None`` (never saying why)."""
        account = self.store.get(username)
        now = int(self.now().timestamp())
        ok = self.passwords.verify(account.password_hash if account else None, password)
        if account is None or not account.active:
            return None
        locked = self.store.locked_until(account.username)
        if locked is not None and locked > now:
            return None  # locked after repeated failures: even the right password waits
        self.store.record_login(
            account.username,
            ok,
            now=now,
            limit=self.attempts,
            lock_for=int(self.lockout.total_seconds()),
        )
        if not ok:
            return None
        if self.passwords.needs_rehash(account.password_hash):
            self.store.set_password_hash(account.username, self.passwords.hash(password))
        return account
