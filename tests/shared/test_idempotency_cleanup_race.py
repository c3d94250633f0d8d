"""A key reused just as the hourly cleanup deletes it (PostgreSQL: the INSERT saw the row, the SELECT did not)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from shared import idempotency
from shared.db import Database, utcnow
from shared.idempotency import keys
from shared.models import IdempotencyKey
from tests.factories import make_account

FINGERPRINT = idempotency.fingerprint("POST", "/deposit", b'{"material":"plastic","units":2}')


def test_a_key_deleted_by_the_cleanup_between_insert_and_select_is_claimed_afresh(
    database: Database, db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(db_session)
    first = idempotency.claim(db_session, account.user_id, "k", FINGERPRINT, method="POST", path="/deposit")
    assert isinstance(first, idempotency.Claim)
    db_session.execute(update(IdempotencyKey).values(created_at=utcnow() - keys.KEY_TTL - timedelta(minutes=1)))
    db_session.commit()

    real_insert = keys._insert_unless_exists

    def insert_then_cleanup_commits(session: Session, values: dict[str, Any]) -> Any:
        key_id = real_insert(session, values)
        if key_id is None:  # the expired row was there; the cleanup deletes it before our SELECT
            with database.engine.begin() as conn:
                conn.execute(delete(IdempotencyKey))
        return key_id

    monkeypatch.setattr(keys, "_insert_unless_exists", insert_then_cleanup_commits)
    with database.session() as session:
        again = idempotency.claim(session, account.user_id, "k", FINGERPRINT, method="POST", path="/deposit")
    assert isinstance(again, idempotency.Claim)
