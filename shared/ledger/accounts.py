"""Users and their wallets, created on first sight of an authenticated identity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.models import User, Wallet


@dataclass(frozen=True, slots=True)
class Account:
    """The caller as the ledger knows them: enough to move money without loading ORM objects."""

    user_id: uuid.UUID
    wallet_id: uuid.UUID
    firebase_uid: str
    email: str | None


# Bounds for AccountCache: ~300 bytes an entry, so a few MB per process; an email changed through another pod is
# picked up within the TTL (ids never change, so only the email can be stale).
ACCOUNT_CACHE_MAX_ENTRIES = 10_000
ACCOUNT_CACHE_TTL_S = 300.0


class AccountCache:
    """Accounts this process has already seen, so an authenticated request needs no lookup query.

    Safe because an account's user and wallet ids never change once created (neither row is ever deleted or
    re-keyed). A caller whose token carries a different email than the one remembered goes to the database,
    which updates it. Bounded in size and age; one per app (tests that TRUNCATE get a fresh app and cache).
    """

    def __init__(
        self,
        max_entries: int = ACCOUNT_CACHE_MAX_ENTRIES,
        ttl_s: float = ACCOUNT_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: dict[str, tuple[float, Account]] = {}
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock

    def get(self, firebase_uid: str, email: str | None) -> Account | None:
        entry = self._entries.get(firebase_uid)
        if entry is None:
            return None
        expires_at, account = entry
        if self._clock() >= expires_at or (email is not None and email != account.email):
            return None
        return account

    def put(self, account: Account) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # cheaper than LRU bookkeeping on every hit; refills at one query per caller
        self._entries[account.firebase_uid] = (self._clock() + self._ttl_s, account)


def _insert_ignoring_conflict(session: Session, table: Table, values: dict[str, Any], key: str) -> None:
    """INSERT ... ON CONFLICT (key) DO NOTHING, on PostgreSQL and SQLite alike."""
    dialect = session.get_bind().dialect.name
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - only the two supported backends reach here
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=[key]))


_users: Any = User.__table__
_wallets: Any = Wallet.__table__
# Runs on every authenticated request: a Core statement built once skips per-request statement construction,
# cache-key generation and the ORM compile plugin (see README, Benchmarks).
_FIND_ACCOUNT = (
    select(_users.c.id, _wallets.c.id, _users.c.email)
    .join(_wallets, _wallets.c.user_id == _users.c.id)
    .where(_users.c.firebase_uid == bindparam("firebase_uid"))
)


def _find(session: Session, firebase_uid: str) -> tuple[uuid.UUID, uuid.UUID, str | None] | None:
    row = session.execute(_FIND_ACCOUNT, {"firebase_uid": firebase_uid}).first()
    return None if row is None else (row[0], row[1], row[2])


def get_or_create_account(
    session: Session, firebase_uid: str, email: str | None, cache: AccountCache | None = None
) -> Account:
    """Return the caller's account, creating user and wallet on the first request; keep email current.

    Safe under concurrent first requests from many pods: inserts ignore conflicts and we re-read. With a
    ``cache``, an account seen before (same email) is answered without a query.
    """
    if cache is not None:
        cached = cache.get(firebase_uid, email)
        if cached is not None:
            return cached
    account = _get_or_create(session, firebase_uid, email)
    if cache is not None:
        cache.put(account)
    return account


def _get_or_create(session: Session, firebase_uid: str, email: str | None) -> Account:
    found = _find(session, firebase_uid)
    if found is not None and (email is None or found[2] == email):
        return Account(found[0], found[1], firebase_uid, found[2])
    with atomic(session):
        now = utcnow()
        if found is None:
            _insert_ignoring_conflict(
                session,
                User.__table__,  # type: ignore[arg-type]
                {
                    "id": uuid.uuid4(),
                    "firebase_uid": firebase_uid,
                    "email": email,
                    "created_at": now,
                    "updated_at": now,
                },
                "firebase_uid",
            )
            user_id = session.execute(select(User.id).where(User.firebase_uid == firebase_uid)).scalar_one()
            _insert_ignoring_conflict(
                session,
                Wallet.__table__,  # type: ignore[arg-type]
                {"id": uuid.uuid4(), "user_id": user_id, "balance_cents": 0, "created_at": now, "updated_at": now},
                "user_id",
            )
        if email is not None:
            session.execute(
                update(User)
                .where(User.firebase_uid == firebase_uid, User.email.is_distinct_from(email))
                .values(email=email, updated_at=now)
            )
        found = _find(session, firebase_uid)
    assert found is not None
    return Account(found[0], found[1], firebase_uid, found[2])


def get_wallet(session: Session, account: Account) -> Wallet:
    return session.execute(select(Wallet).where(Wallet.id == account.wallet_id)).scalar_one()
