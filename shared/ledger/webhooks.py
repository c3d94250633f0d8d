"""Provider payout events (webhooks) applied to withdrawals, each event id at most once.

The event id is inserted in the same transaction as the status change it causes, so a redelivered event,
or two deliveries racing on two pods, change the withdrawal once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.ledger.payouts import outcome_unknown, rowcount
from shared.models import AppliedWebhookEvent, Withdrawal, WithdrawalStatus
from shared.observability import metrics

# The failure code used when a payout.failed event carries none.
PAYOUT_FAILED = "payout_failed"


class PayoutEventKind(StrEnum):
    PAID = "payout.paid"
    FAILED = "payout.failed"


class EventOutcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"  # unknown type, no matching withdrawal, or a status it cannot move from
    DUPLICATE = "duplicate"  # already seen; nothing done


@dataclass(frozen=True, slots=True)
class PayoutEvent:
    event_id: str
    event_type: str
    payout_id: str | None
    # From the payout's metadata, which the worker sets: identifies the withdrawal before the worker has
    # stored the payout id (a webhook can be faster than the worker's own bookkeeping).
    withdrawal_id: uuid.UUID | None = None
    generation: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None


# Stripe payouts go paid -> failed (a bank can return money days later) but never failed -> paid. Besides the
# worker's own ``processing``, an event also decides a withdrawal whose payout call's outcome the worker never
# learned: ``pending`` awaiting a retry, or ``failed`` with a code in OUTCOME_UNKNOWN_CODES. Their retry would
# replay Stripe's stored creation response, which never says "failed", so this event is the only news of a failure.
_ALLOWED_FROM = (WithdrawalStatus.PENDING, WithdrawalStatus.PROCESSING, WithdrawalStatus.PAID)
# A conditional UPDATE that lost to a worker or operator is decided again on the fresh row, this many times.
MAX_DECISIONS = 3


def _allowed(withdrawal: Withdrawal) -> bool:
    if withdrawal.status == WithdrawalStatus.FAILED:
        return outcome_unknown(withdrawal.failure_code)
    return withdrawal.status in _ALLOWED_FROM


def _find(session: Session, event: PayoutEvent) -> Withdrawal | None:
    if event.payout_id:
        found = session.execute(
            select(Withdrawal)
            .where(Withdrawal.provider_payout_id == event.payout_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if found is not None:
            return found
    if event.withdrawal_id is None or event.generation is None:
        return None
    # Only a payout of the current attempt generation, not yet recorded: after an operator requeue, a late
    # event about the previous generation's payout must not decide the new attempt.
    return session.execute(
        select(Withdrawal)
        .where(
            Withdrawal.id == event.withdrawal_id,
            Withdrawal.attempt_generation == event.generation,
            Withdrawal.provider_payout_id.is_(None),
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _insert_event(session: Session, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row."""
    dialect = session.get_bind().dialect.name
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(AppliedWebhookEvent).values(**values).on_conflict_do_nothing(index_elements=["event_id"])
    return rowcount(session, statement) == 1


def apply_payout_event(session: Session, event: PayoutEvent) -> EventOutcome:
    """Apply one provider event to its withdrawal, once per event id. Commits."""
    now = utcnow()
    with atomic(session):
        inserted = _insert_event(
            session,
            {
                "event_id": event.event_id,
                "event_type": event.event_type[:64],
                "outcome": EventOutcome.IGNORED,
                "received_at": now,
            },
        )
        if not inserted:
            return EventOutcome.DUPLICATE
        kind = PayoutEventKind(event.event_type) if event.event_type in set(PayoutEventKind) else None
        decision: tuple[EventOutcome, str | None] | None = None
        withdrawal = None
        for _ in range(MAX_DECISIONS if kind is not None else 1):
            withdrawal = _find(session, event)
            decision = _decide(session, event, kind, withdrawal, now)
            if decision is not None:
                break
        outcome, entered = decision or (EventOutcome.IGNORED, None)
        rowcount(
            session,
            update(AppliedWebhookEvent)
            .where(AppliedWebhookEvent.event_id == event.event_id)
            .values(outcome=outcome, withdrawal_id=withdrawal.id if withdrawal is not None else None),
        )
    if entered is not None:
        metrics.record_withdrawal_status(entered)
    return outcome


def _decide(
    session: Session, event: PayoutEvent, kind: PayoutEventKind | None, withdrawal: Withdrawal | None, now: datetime
) -> tuple[EventOutcome, str | None] | None:
    """Apply the event to the withdrawal as just read: the outcome and the status entered (None if unchanged).
    None when a concurrent change won the UPDATE."""
    if withdrawal is None or kind is None:
        return EventOutcome.IGNORED, None
    if kind is PayoutEventKind.PAID and withdrawal.status == WithdrawalStatus.PAID:
        return EventOutcome.APPLIED, None  # confirms what the worker recorded; nothing to change
    if not _allowed(withdrawal):
        return EventOutcome.IGNORED, None
    values: dict[str, object] = {"updated_at": now, "lease_expires_at": None, "next_attempt_at": None}
    if event.payout_id and not withdrawal.provider_payout_id:
        values["provider_payout_id"] = event.payout_id
    if kind is PayoutEventKind.PAID:
        values.update(
            status=WithdrawalStatus.PAID, paid_at=withdrawal.paid_at or now, failure_code=None, failure_message=None
        )
    else:
        values.update(
            status=WithdrawalStatus.FAILED,
            failure_code=(event.failure_code or PAYOUT_FAILED)[:64],
            failure_message=event.failure_message or "the bank returned the payout",
        )
    won = rowcount(
        session,
        update(Withdrawal)
        .where(
            Withdrawal.id == withdrawal.id,
            Withdrawal.status == withdrawal.status,
            Withdrawal.attempts == withdrawal.attempts,
            Withdrawal.attempt_generation == withdrawal.attempt_generation,
        )
        .values(**values)
        .execution_options(synchronize_session=False),
    )
    return (EventOutcome.APPLIED, str(values["status"])) if won == 1 else None
