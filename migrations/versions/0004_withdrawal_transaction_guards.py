"""withdrawal transaction guards: at most one debit and one reversal per withdrawal

Partial unique indexes on transactions(withdrawal_id), one WHERE transaction_type = 'withdrawal' and one WHERE
transaction_type = 'withdrawal_reversal'. The ledger already moves a withdrawal's money at most once each way;
these make the database refuse a second debit or refund even from code (or SQL) that bypasses the ledger.
Creating them fails if a database already holds such a duplicate: `flask ledger verify` lists it first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GUARDS = {
    "uq_transactions_withdrawal_debit": "withdrawal",
    "uq_transactions_withdrawal_reversal": "withdrawal_reversal",
}


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        for name, kind in GUARDS.items():
            where = sa.text(f"transaction_type = '{kind}'")
            batch_op.create_index(name, ["withdrawal_id"], unique=True, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        for name in GUARDS:
            batch_op.drop_index(name)
