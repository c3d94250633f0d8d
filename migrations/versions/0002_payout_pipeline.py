"""payout pipeline: operator audit, applied webhook events, withdrawal keys

Adds what the payout worker, the Stripe webhooks and the operator tools need: on withdrawals the retry
schedule (next_attempt_at), the connected account and bank account paid and the idempotency keys of the current attempt
generation, and a unique index on provider_payout_id (webhooks look withdrawals up by it); the
operator_actions audit table; and applied_webhook_events, which makes every webhook event id apply once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 16:59:33.768399
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied_webhook_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("withdrawal_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["withdrawal_id"], ["withdrawals.id"], name=op.f("fk_applied_webhook_events_withdrawal_id_withdrawals")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_applied_webhook_events")),
    )
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("withdrawal_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["withdrawal_id"], ["withdrawals.id"], name=op.f("fk_operator_actions_withdrawal_id_withdrawals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_actions")),
    )
    with op.batch_alter_table("operator_actions", schema=None) as batch_op:
        batch_op.create_index("ix_operator_actions_withdrawal_created", ["withdrawal_id", "created_at"], unique=False)

    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provider_account_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("provider_bank_account_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("transfer_idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("payout_idempotency_key", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_withdrawals_provider_payout_id", ["provider_payout_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index("ix_withdrawals_provider_payout_id")
        batch_op.drop_column("payout_idempotency_key")
        batch_op.drop_column("transfer_idempotency_key")
        batch_op.drop_column("provider_bank_account_id")
        batch_op.drop_column("provider_account_id")
        batch_op.drop_column("next_attempt_at")

    with op.batch_alter_table("operator_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_operator_actions_withdrawal_created")

    op.drop_table("operator_actions")
    op.drop_table("applied_webhook_events")
