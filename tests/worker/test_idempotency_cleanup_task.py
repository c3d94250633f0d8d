"""Beat deletes expired idempotency keys every hour through a thin task over cleanup.run_once()."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from shared import idempotency
from shared.config import Config
from shared.db import Database, utcnow
from shared.models import IdempotencyKey
from shared.payouts.celery_settings import IDEMPOTENCY_CLEANUP_TASK, celery_settings
from tests.factories import make_account


def test_beat_schedules_the_cleanup_hourly() -> None:
    schedule = celery_settings(Config.from_env({}))["beat_schedule"]
    entry = schedule["delete-expired-idempotency-keys"]
    assert (entry["task"], entry["schedule"]) == (IDEMPOTENCY_CLEANUP_TASK, 3600.0)


def test_the_task_deletes_expired_keys(database: Database, db_session: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import tasks

    assert tasks.delete_expired_idempotency_keys.name == IDEMPOTENCY_CLEANUP_TASK
    with database.session() as session:
        account = make_account(session)
        for key in ("old-1", "old-2", "fresh"):
            idempotency.claim(session, account.user_id, key, "f" * 64, method="POST", path="/deposit")
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key.like("old-%"))
            .values(created_at=utcnow() - idempotency.KEY_TTL - timedelta(minutes=1))
        )
        session.commit()

    monkeypatch.setattr(tasks, "get_runtime", lambda: SimpleNamespace(database=database))
    assert tasks.delete_expired_idempotency_keys() == 2
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one() == 1
