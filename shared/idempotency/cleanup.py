"""The periodic cleanup of expired idempotency keys; the worker's beat schedule wraps :func:`run_once`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.idempotency.keys import KEY_TTL
from shared.models import IdempotencyKey

# Deleting in batches keeps each transaction (and its locks) short however many keys expired at once.
BATCH_SIZE = 5_000


def run_once(session: Session, now: datetime | None = None) -> int:
    """Delete every key older than :data:`KEY_TTL`; return how many were deleted. Commits each batch."""
    cutoff = (now or utcnow()) - KEY_TTL
    deleted = 0
    while True:
        with atomic(session):
            batch = select(IdempotencyKey.id).where(IdempotencyKey.created_at <= cutoff).limit(BATCH_SIZE)
            result = session.execute(
                delete(IdempotencyKey)
                .where(IdempotencyKey.id.in_(batch.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
        count = int(cast("CursorResult[Any]", result).rowcount)
        deleted += count
        if count < BATCH_SIZE:
            return deleted
