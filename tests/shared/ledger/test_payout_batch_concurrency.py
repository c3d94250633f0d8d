"""Drains in many workers claiming at once split the due withdrawals: no row twice, none left, nobody waits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database
from shared.models import Withdrawal
from tests.shared.ledger.payout_helpers import POLICY, make_withdrawal, reload


def test_a_withdrawal_locked_by_another_transaction_is_skipped_not_waited_for(
    database: Database, db_session: Session
) -> None:
    locked, free = make_withdrawal(db_session), make_withdrawal(db_session)
    with database.session() as holder:
        holder.execute(select(Withdrawal.id).where(Withdrawal.id == locked.id).with_for_update()).all()
        with database.session() as worker:
            batch = ledger.claim_due(worker, POLICY, limit=10)  # would block here without SKIP LOCKED
        assert [claim.withdrawal_id for claim in batch.claims] == [free.id]
        holder.rollback()
    assert reload(db_session, locked).status == "pending"


def test_concurrent_drains_claim_every_due_withdrawal_exactly_once(database: Database, db_session: Session) -> None:
    withdrawals = [make_withdrawal(db_session) for _ in range(60)]
    start = threading.Barrier(6)

    def drain() -> list[ledger.Claim]:
        claims: list[ledger.Claim] = []
        with database.session() as session:
            start.wait()
            while batch := ledger.claim_due(session, POLICY, limit=7).claims:
                claims += batch
        return claims

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: drain(), range(6)))
    claimed_ids = [claim.withdrawal_id for claims in results for claim in claims]
    assert sorted(claimed_ids) == sorted(w.id for w in withdrawals)  # each one, once
    assert sum(1 for claims in results if claims) > 1  # the work was shared
    assert {reload(db_session, w).attempts for w in withdrawals} == {1}
