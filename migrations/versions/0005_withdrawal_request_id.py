"""withdrawal request id: the X-Request-ID of the POST /withdraw that created the withdrawal

The payout worker pays withdrawals in batches, so the id that ties a payout's log lines to its HTTP request
travels with the row instead of a task header. Nullable: older rows, and rows not created over HTTP, have none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_column("request_id")
