"""What "nothing moved" means, as data: every balance and every table's row count, compared before and after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from shared.db import Base, Database
from shared.models import Wallet


@dataclass(frozen=True)
class LedgerSnapshot:
    balances: dict[uuid.UUID, int]
    row_counts: dict[str, int]


def take_snapshot(db: Database) -> LedgerSnapshot:
    with db.engine.connect() as conn:
        balances = {
            wallet_id: balance for wallet_id, balance in conn.execute(sa.select(Wallet.id, Wallet.balance_cents))
        }
        counts = {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }
    return LedgerSnapshot(balances, counts)
