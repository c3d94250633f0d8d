"""Users and their wallets, created on first sight of an authenticated identity."""

from __future__ import annotations

import uuid
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


def get_or_create_account(session: Session, firebase_uid: str, email: str | None) -> Account:
    """Return the caller's account, creating user and wallet on the first request; keep email current.

    Safe under concurrent first requests from many pods: inserts ignore conflicts and we re-read. Always asks
    the database (one indexed SELECT): a per-process cache of ids answered stale wallets with 500s once rows
    were removed under a running server.
    """
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
