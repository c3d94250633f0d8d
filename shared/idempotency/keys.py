"""The life of an idempotency key, in atomic phases (after brandur's rocket-rides-atomic).

1. :func:`claim` commits a row for (user, key) holding the request's fingerprint and a lock, or answers from
   an existing row: replay its stored response, refuse a different request (422), or refuse while another
   request holds the lock (409).
2. :func:`complete` re-asserts the lock, runs the work (a ledger call) and stores the response, all in ONE
   database transaction: money never moves without its stored response, and no response is stored for
   money that did not move.
3. After a server error, :func:`release` drops the lock and stores nothing, so a retry runs again; a refusal
   the client caused (a 4xx) is stored by :func:`record` and replayed like a success.

A process that dies after phase 1 leaves a lock and no response; its phase-2 transaction rolled back with it.
The lock expires after :data:`LOCK_TIMEOUT`, and the next retry takes the key over and runs the work once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import atomic, unit_of_work, utcnow
from shared.ledger.errors import LedgerError
from shared.models import IdempotencyKey

# Clients may retry for a day; after that a key is forgotten (and cleanup.run_once deletes it).
KEY_TTL = timedelta(hours=24)
# Longer than any live request can run (gunicorn kills a worker after GUNICORN_TIMEOUT, 30 s by default), so
# only a request that died loses its lock. Even if a slow one did, complete() re-asserts the lock in the
# money transaction and rolls back rather than move money a second time.
LOCK_TIMEOUT = timedelta(seconds=60)


class IdempotencyKeyReused(LedgerError):
    code = "idempotency_key_reused"


class IdempotentRequestInProgress(LedgerError):
    code = "idempotency_request_in_progress"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof that this request holds the key: only the holder of ``lock_id`` may complete it."""

    key_id: uuid.UUID
    lock_id: uuid.UUID


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two requests share a digest
        digest.update(part)
    return digest.hexdigest()


def claim(
    session: Session,
    user_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    *,
    method: str,
    path: str,
    now: datetime | None = None,
) -> Claim | StoredResponse:
    """Phase 1 (commits): take the key for this request, or return the response to replay.

    :raises IdempotencyKeyReused: the key was first used for a different request.
    :raises IdempotentRequestInProgress: another request holds the key right now.
    """
    now = now or utcnow()
    lock_id = uuid.uuid4()
    fresh = {
        "request_method": method,
        "request_path": path,
        "request_fingerprint": request_fingerprint,
        "lock_id": lock_id,
        "locked_at": now,
        "response_status": None,
        "response_body": None,
        "response_headers": None,
        "completed_at": None,
        "created_at": now,
    }
    with atomic(session):
        row = None
        # Twice: on PostgreSQL the cleanup can delete an expired row between our INSERT (which saw it) and our
        # SELECT (which does not); the second INSERT then takes the key.
        for _ in range(2):
            key_id = _insert_unless_exists(session, {"id": uuid.uuid4(), "user_id": user_id, "key": key, **fresh})
            if key_id is not None:
                return Claim(key_id, lock_id)
            # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serializes): one decision per key at a time.
            row = session.execute(
                select(IdempotencyKey)
                .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)  # the session may hold an older copy of this row
            ).scalar_one_or_none()
            if row is not None:
                break
        if row is None:
            raise IdempotentRequestInProgress("this Idempotency-Key is changing hands; retry shortly")
        if row.created_at <= now - KEY_TTL:
            _update(session, row.id, fresh)  # expired: this is a new request that happens to reuse the key
            return Claim(row.id, lock_id)
        if row.request_fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request; use a new key",
                first_request={"method": row.request_method, "path": row.request_path},
            )
        if row.response_status is not None:
            headers = json.loads(row.response_headers or "{}")
            return StoredResponse(row.response_status, row.response_body or "", headers)
        if row.locked_at is not None and row.locked_at > now - LOCK_TIMEOUT:
            raise IdempotentRequestInProgress(
                "a request with this Idempotency-Key is still being processed; retry shortly",
                retry_after_seconds=int(LOCK_TIMEOUT.total_seconds()),
            )
        # Never finished: a server error released it, or the process holding it died. Run it again.
        _update(session, row.id, {"lock_id": lock_id, "locked_at": now})
        return Claim(row.id, lock_id)


def complete(session: Session, held: Claim, work: Callable[[], StoredResponse]) -> StoredResponse:
    """Phase 2 (commits): run ``work`` and store its response in one database transaction.

    ``work`` moves money through the ledger, whose own transactions join this one. If it raises, nothing it
    wrote is committed and the key stays locked: call :func:`record` or :func:`release`.

    :raises IdempotentRequestInProgress: the lock expired and another request took the key over.
    """
    with unit_of_work(session):
        _reassert_lock(session, held)
        response = work()
        _store(session, held, response)
    return response


def record(session: Session, held: Claim, response: StoredResponse) -> None:
    """Store a refusal the client caused (4xx, nothing moved) so that retries replay it. Commits."""
    with atomic(session):
        _store(session, held, response)


def release(session: Session, held: Claim) -> None:
    """After a server error: unlock without storing anything, so a retry with the same key runs again. Commits."""
    with atomic(session):
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == held.key_id, IdempotencyKey.lock_id == held.lock_id)
            .values(lock_id=None, locked_at=None)
            .execution_options(synchronize_session=False)
        )


def _reassert_lock(session: Session, held: Claim) -> None:
    # On PostgreSQL this also locks the key row until commit, so a takeover waits for us and then sees our
    # stored response; if the takeover came first, our lock_id no longer matches and nothing moves.
    result = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == held.key_id,
            IdempotencyKey.lock_id == held.lock_id,
            IdempotencyKey.response_status.is_(None),
        )
        .values(locked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not cast("CursorResult[Any]", result).rowcount:
        raise IdempotentRequestInProgress("another request with this Idempotency-Key took it over; retry shortly")


def _store(session: Session, held: Claim, response: StoredResponse) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == held.key_id, IdempotencyKey.lock_id == held.lock_id)
        .values(
            response_status=response.status,
            response_body=response.body,
            response_headers=json.dumps(response.headers),
            completed_at=utcnow(),
            lock_id=None,
            locked_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _update(session: Session, key_id: uuid.UUID, values: dict[str, Any]) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _insert_unless_exists(session: Session, values: dict[str, Any]) -> uuid.UUID | None:
    """INSERT ... ON CONFLICT (user_id, key) DO NOTHING RETURNING id: the new id, or None if the key exists.

    On PostgreSQL a concurrent insert of the same key waits for the first one to commit, then does nothing.
    """
    dialect = session.get_bind().dialect.name
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - only the two supported backends reach here
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    statement = (
        insert(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)
    )
    key_id: uuid.UUID | None = session.execute(statement).scalar_one_or_none()
    return key_id
