"""Tables: users, wallets, transactions and withdrawals (the seed's SQL runs against these unchanged)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow
from shared.observability.context import MAX_REQUEST_ID_LENGTH


class TransactionType(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    # Funds of a canceled withdrawal coming back to the wallet.
    WITHDRAWAL_REVERSAL = "withdrawal_reversal"


class Material(StrEnum):
    PLASTIC = "plastic"
    ALUMINUM = "aluminum"


class WithdrawalStatus(StrEnum):
    PENDING = "pending"  # debited, waiting for a worker
    PROCESSING = "processing"  # a worker holds the lease and is talking to the provider
    PAID = "paid"
    FAILED = "failed"  # funds stay held until an operator requeues or cancels
    CANCELED = "canceled"  # funds returned to the wallet by a reversal transaction


def _enum_values(enum: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


def _one_per_withdrawal(name: str, kind: TransactionType) -> Index:
    """A partial unique index: one transaction of ``kind`` per withdrawal (PostgreSQL and SQLite alike)."""
    where = text(f"transaction_type = '{kind.value}'")
    return Index(name, "withdrawal_id", unique=True, postgresql_where=where, sqlite_where=where)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    firebase_uid: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    stripe_account_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (CheckConstraint("balance_cents >= 0", name="balance_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    balance_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Withdrawal(Base):
    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(f"status IN ({_enum_values(WithdrawalStatus)})", name="status_known"),
        Index("ix_withdrawals_user_created", "user_id", "created_at", "id"),
        Index("ix_withdrawals_status_updated", "status", "updated_at"),
        # Webhooks find their withdrawal by payout id; one payout never pays two withdrawals.
        Index("ix_withdrawals_provider_payout_id", "provider_payout_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    amount_cents: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=WithdrawalStatus.PENDING)
    # Kept only to hand to the payout provider; API responses show bank_token_last4 at most.
    bank_token: Mapped[str] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # Bumped by an operator requeue after a definite failure: a new generation means a new idempotency key.
    attempt_generation: Mapped[int] = mapped_column(default=0)
    lease_expires_at: Mapped[datetime | None]
    provider_transfer_id: Mapped[str | None] = mapped_column(String(255))
    provider_payout_id: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Payout pipeline (issue 3). Earliest time the sweeper may enqueue this withdrawal again: a retry's
    # backoff, or a grace period after the sweeper itself enqueued it.
    next_attempt_at: Mapped[datetime | None]
    # The connected account paid by this withdrawal, and the Stripe idempotency keys of the current attempt
    # generation (the same keys for every retry of an unknown outcome; new ones after an operator requeue).
    provider_account_id: Mapped[str | None] = mapped_column(String(255))
    # The withdrawal's bank_token attached to that account (recovery point: never attached twice).
    provider_bank_account_id: Mapped[str | None] = mapped_column(String(255))
    transfer_idempotency_key: Mapped[str | None] = mapped_column(String(255))
    payout_idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # X-Request-ID of the POST /withdraw that created it: the worker pays withdrawals in batches, so the id
    # travels with the row (not a task header) to every log line of this withdrawal's payout.
    request_id: Mapped[str | None] = mapped_column(String(MAX_REQUEST_ID_LENGTH))


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_nonzero"),
        CheckConstraint(f"transaction_type IN ({_enum_values(TransactionType)})", name="type_known"),
        # Serves GET /transactions: newest first, keyset pagination on (created_at, id).
        Index("ix_transactions_wallet_created", "wallet_id", "created_at", "id"),
        Index("ix_transactions_user_created", "user_id", "created_at"),
        # At most one debit and one reversal per withdrawal, enforced by the database itself: the ledger's
        # conditional UPDATEs already guarantee it, this catches any future code (or manual SQL) that does not.
        _one_per_withdrawal("uq_transactions_withdrawal_debit", TransactionType.WITHDRAWAL),
        _one_per_withdrawal("uq_transactions_withdrawal_reversal", TransactionType.WITHDRAWAL_REVERSAL),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    transaction_type: Mapped[str] = mapped_column(String(32))
    material: Mapped[str | None] = mapped_column(String(16))
    units: Mapped[int | None]
    # Signed: deposits and reversals positive, withdrawals negative; SUM equals the wallet balance.
    amount_cents: Mapped[int]
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("withdrawals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OperatorAction(Base):
    """Audit trail: every requeue or cancel an operator made (who, when, what, from/to status)."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index("ix_operator_actions_withdrawal_created", "withdrawal_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    withdrawal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("withdrawals.id"))
    action: Mapped[str] = mapped_column(String(32))
    # "cli:<os user>" or "admin:<firebase uid>"; operators are people, so never blank.
    actor: Mapped[str] = mapped_column(String(400))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppliedWebhookEvent(Base):
    """Provider webhook events already handled: a redelivered event id is acknowledged and ignored."""

    __tablename__ = "applied_webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("withdrawals.id"))
    # applied | ignored (unknown type, no matching withdrawal, or a stale status change)
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key``: the request it was first sent with and, once done, the response to replay.

    A row is "in flight" while ``lock_id`` is set (the request holding it may still be running, or may have
    died: the lock expires) and "done" once ``response_status`` is set, written in the same database
    transaction as the money the request moved.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
        # Serves the 24-hour cleanup.
        Index("ix_idempotency_keys_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_method: Mapped[str] = mapped_column(String(8))
    request_path: Mapped[str] = mapped_column(String(255))
    # sha256 of method, path and canonical JSON body: the same key with another request is refused.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    lock_id: Mapped[uuid.UUID | None]
    locked_at: Mapped[datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    # JSON object of the response headers a replay repeats (Location).
    response_headers: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
