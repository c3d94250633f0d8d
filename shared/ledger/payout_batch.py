"""The payout pipeline in batches: claim many due withdrawals at once, record many attempts' outcomes at once.

A batch costs a handful of transactions however many withdrawals it holds (claim, connected accounts,
outcomes), where paying withdrawals one by one costs several each, and its statements are built once and
sent as one ``executemany`` (README, Benchmarks). The fencing is the same as one by one, row by row: a claim
wins only on the row as it read it, an outcome is recorded only while its claim still holds the lease.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, atomic, utcnow
from shared.ledger.errors import InvalidTransition, NotFound
from shared.ledger.payouts import (
    AS_READ,
    RETRIES_EXHAUSTED,
    TAKE,
    Claim,
    ClaimableRow,
    PayoutPolicy,
    claim_of,
    rowcount,
    take_params,
)
from shared.models import User, Withdrawal, WithdrawalStatus

_w: Any = Withdrawal.__table__
_u: Any = User.__table__

DUE = (
    select(
        _w.c.id,
        _w.c.user_id,
        _w.c.status,
        _w.c.amount_cents,
        _w.c.bank_token,
        _w.c.attempts,
        _w.c.attempt_generation,
        _w.c.provider_account_id,
        _w.c.provider_bank_account_id,
        _w.c.provider_transfer_id,
        _w.c.transfer_idempotency_key,
        _w.c.request_id,
        _u.c.email,
        _u.c.stripe_account_id,
    )
    .join(_u, _u.c.id == _w.c.user_id)
    .where(
        _w.c.status == WithdrawalStatus.PENDING.value,
        or_(_w.c.next_attempt_at.is_(None), _w.c.next_attempt_at <= bindparam("now", type_=UTCDateTime())),
    )
    .order_by(_w.c.updated_at)
    .limit(bindparam("limit"))
    # Rows other workers have locked are skipped, so workers claiming at once split the work instead of
    # queueing on each other's locks (PostgreSQL; SQLite serializes writers with BEGIN IMMEDIATE instead).
    .with_for_update(of=_w, skip_locked=True)
)
_FENCE = (
    _w.c.id == bindparam("claim_id"),
    _w.c.status == WithdrawalStatus.PROCESSING.value,
    _w.c.attempts == bindparam("claim_attempt"),
    _w.c.attempt_generation == bindparam("claim_generation"),
)
_NOW = bindparam("now", type_=UTCDateTime())
# Progress: a step recorded now, or kept as an earlier attempt recorded it.
_PROGRESS = {
    column: func.coalesce(bindparam(f"new_{column}", type_=_w.c[column].type), _w.c[column])
    for column in ("provider_account_id", "provider_bank_account_id", "provider_transfer_id")
}
RECORD = {
    WithdrawalStatus.PAID: update(_w)
    .where(*_FENCE)
    .values(
        status=WithdrawalStatus.PAID.value,
        provider_payout_id=bindparam("new_payout_id"),
        paid_at=_NOW,
        lease_expires_at=None,
        failure_code=None,
        failure_message=None,
        updated_at=_NOW,
        **_PROGRESS,
    ),
    WithdrawalStatus.FAILED: update(_w)
    .where(*_FENCE)
    .values(
        status=WithdrawalStatus.FAILED.value,
        failure_code=bindparam("new_failure_code"),
        failure_message=bindparam("new_failure_message"),
        lease_expires_at=None,
        next_attempt_at=None,
        updated_at=_NOW,
        **_PROGRESS,
    ),
    # Back to pending for a retry. The keys stay: the next attempt repeats the same provider calls, which the
    # provider deduplicates.
    WithdrawalStatus.PENDING: update(_w)
    .where(*_FENCE)
    .values(
        status=WithdrawalStatus.PENDING.value,
        next_attempt_at=bindparam("new_next_attempt_at", type_=UTCDateTime()),
        lease_expires_at=None,
        updated_at=_NOW,
        **_PROGRESS,
    ),
}
_EXHAUST = (
    update(_w)
    .where(*AS_READ)
    .values(
        status=WithdrawalStatus.FAILED.value,
        failure_code=RETRIES_EXHAUSTED,
        failure_message=bindparam("message"),
        lease_expires_at=None,
        next_attempt_at=None,
        updated_at=_NOW,
    )
)
# Which rows of a batch a statement changed, when its total says some were not: every row a batch writes gets
# the batch's own timestamp.
_WRITTEN_AT = select(_w.c.id, _w.c.status, _w.c.provider_payout_id, _w.c.updated_at).where(
    _w.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    claims: list[Claim]
    # Due withdrawals whose attempt budget was already spent: marked failed as retries_exhausted.
    exhausted: list[uuid.UUID]

    @property
    def size(self) -> int:
        return len(self.claims) + len(self.exhausted)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt ended in: ``paid``, ``failed``, or back to ``pending`` for a retry; and how far it got."""

    claim: Claim
    status: WithdrawalStatus
    account_id: str | None = None
    bank_account_id: str | None = None
    transfer_id: str | None = None
    payout_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    retry_in_seconds: float | None = None


def claim_due(session: Session, policy: PayoutPolicy, limit: int, now: datetime | None = None) -> ClaimedBatch:
    """Up to ``limit`` due ``pending`` withdrawals -> ``processing`` with a lease, oldest first. Commits once.

    Due: never attempted, or a retry whose backoff has passed. A ``processing`` withdrawal whose worker died is
    the sweeper's (it waits for the lease to run out).
    """
    now = now or utcnow()
    with atomic(session):
        rows = session.execute(DUE, {"now": now, "limit": limit}).all()
        spent = [row for row in rows if row.attempts >= policy.max_attempts]
        fresh = [row for row in rows if row.attempts < policy.max_attempts]
        exhausted = _write(session, _EXHAUST, [_exhaust_params(row, now) for row in spent], [r.id for r in spent], now)
        won = _write(session, TAKE, [take_params(row, policy, now) for row in fresh], [r.id for r in fresh], now)
    claims = [claim_of(cast(ClaimableRow, row), row.email, row.stripe_account_id) for row in fresh if row.id in won]
    return ClaimedBatch(claims, [row.id for row in spent if row.id in exhausted])


def _exhaust_params(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "read_id": row.id,
        "read_status": row.status,
        "read_attempts": row.attempts,
        "read_generation": row.attempt_generation,
        "message": f"gave up after {row.attempts} attempts",
        "now": now,
    }


def record_accounts(session: Session, created: dict[uuid.UUID, str]) -> dict[uuid.UUID, str]:
    """Remember each user's new connected account (first writer wins); return the one to pay, by user. Commits.

    Two first withdrawals of one user, in one batch or in two workers, may each create an account; all of
    them then pay the account stored first.
    """
    if not created:
        return {}
    with atomic(session):
        session.execute(
            _STORE_ACCOUNT,
            [
                {"user_id": user_id, "account_id": account_id, "now": utcnow()}
                for user_id, account_id in created.items()
            ],
        )
        stored = session.execute(_STORED_ACCOUNTS, {"ids": list(created)}).all()
    return {user_id: account_id for user_id, account_id in stored if account_id is not None}


_STORE_ACCOUNT = (
    update(_u)
    .where(_u.c.id == bindparam("user_id"), _u.c.stripe_account_id.is_(None))
    .values(stripe_account_id=bindparam("account_id"), updated_at=_NOW)
)
_STORED_ACCOUNTS = select(_u.c.id, _u.c.stripe_account_id).where(_u.c.id.in_(bindparam("ids", expanding=True)))


def record_outcomes(session: Session, outcomes: list[AttemptOutcome], now: datetime | None = None) -> list[bool]:
    """Record every attempt's outcome and progress in one transaction. Commits.

    Per outcome: True when recorded (or already true: a webhook marked it paid with the same payout first);
    False when this worker no longer held the withdrawal (its lease was taken over, or an operator or webhook
    decided first): nothing is written for it, and whoever holds it now decides.
    """
    unknown = {outcome.status for outcome in outcomes} - RECORD.keys()
    if unknown:
        raise ValueError(f"an attempt cannot end in {sorted(unknown)}")
    now = now or utcnow()
    recorded: set[uuid.UUID] = set()
    with atomic(session):
        for status, statement in RECORD.items():
            group = [outcome for outcome in outcomes if outcome.status == status]
            params = [_record_params(outcome, now) for outcome in group]
            recorded |= _write(session, statement, params, [o.claim.withdrawal_id for o in group], now)
        missed = [o for o in outcomes if o.status == WithdrawalStatus.PAID and o.claim.withdrawal_id not in recorded]
        if missed:  # a webhook may have marked them paid with this very payout first: that is success
            rows = session.execute(_WRITTEN_AT, {"ids": [o.claim.withdrawal_id for o in missed]}).all()
            paid = {(row.id, row.provider_payout_id) for row in rows if row.status == WithdrawalStatus.PAID}
            recorded |= {o.claim.withdrawal_id for o in missed if (o.claim.withdrawal_id, o.payout_id) in paid}
    return [outcome.claim.withdrawal_id in recorded for outcome in outcomes]


def _record_params(outcome: AttemptOutcome, now: datetime) -> dict[str, Any]:
    claim = outcome.claim
    params: dict[str, Any] = {
        "claim_id": claim.withdrawal_id,
        "claim_attempt": claim.attempt,
        "claim_generation": claim.generation,
        "now": now,
        "new_provider_account_id": outcome.account_id,
        "new_provider_bank_account_id": outcome.bank_account_id,
        "new_provider_transfer_id": outcome.transfer_id,
    }
    if outcome.status == WithdrawalStatus.PAID:
        params["new_payout_id"] = outcome.payout_id
    elif outcome.status == WithdrawalStatus.FAILED:
        params["new_failure_code"] = (outcome.failure_code or "unknown")[:64]
        params["new_failure_message"] = outcome.failure_message
    else:  # PENDING: due again after the backoff
        params["new_next_attempt_at"] = now + timedelta(seconds=outcome.retry_in_seconds or 0)
    return params


def _write(
    session: Session, statement: Any, params: list[dict[str, Any]], ids: list[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """Run a fenced UPDATE for every row at once; return the ids of the rows it changed."""
    if not params:
        return set()
    if rowcount(session, statement, params) == len(params):
        return set(ids)
    # Someone moved some rows between our read and our write (SQLite, or a lease taken over): ask which.
    return {row.id for row in session.execute(_WRITTEN_AT, {"ids": ids}) if row.updated_at == now}


# -- one attempt at a time (webhooks' tests, operators' tools): the same statements, refusals as exceptions -----


def mark_paid(
    session: Session,
    claim: Claim,
    payout_id: str,
    now: datetime | None = None,
    account_id: str | None = None,
    transfer_id: str | None = None,
) -> None:
    """``processing`` -> ``paid`` with the provider's payout id. Commits.

    Already ``paid`` with this payout (a webhook got there first) is success; anything else is refused.
    """
    outcome = AttemptOutcome(
        claim, WithdrawalStatus.PAID, account_id=account_id, transfer_id=transfer_id, payout_id=payout_id
    )
    _record_one(session, outcome, now)


def mark_failed(
    session: Session,
    claim: Claim,
    code: str,
    message: str,
    now: datetime | None = None,
    account_id: str | None = None,
    transfer_id: str | None = None,
) -> None:
    """``processing`` -> ``failed``; the amount stays held until an operator requeues or cancels. Commits."""
    outcome = AttemptOutcome(
        claim,
        WithdrawalStatus.FAILED,
        account_id=account_id,
        transfer_id=transfer_id,
        failure_code=code,
        failure_message=message,
    )
    _record_one(session, outcome, now)


def release_for_retry(session: Session, claim: Claim, delay_seconds: float, now: datetime | None = None) -> None:
    """``processing`` -> ``pending`` after a transient error, due again in ``delay_seconds``. Commits."""
    _record_one(session, AttemptOutcome(claim, WithdrawalStatus.PENDING, retry_in_seconds=delay_seconds), now)


def _record_one(session: Session, outcome: AttemptOutcome, now: datetime | None) -> None:
    if record_outcomes(session, [outcome], now)[0]:
        return
    claim = outcome.claim
    status = session.execute(select(_w.c.status).where(_w.c.id == claim.withdrawal_id)).scalar_one_or_none()
    session.rollback()  # close the read's transaction: the caller's session is left as record_outcomes left it
    if status is None:
        raise NotFound("no such withdrawal", withdrawal_id=str(claim.withdrawal_id))
    if status == WithdrawalStatus.PROCESSING:
        raise InvalidTransition("this worker no longer holds the withdrawal", withdrawal_id=str(claim.withdrawal_id))
    raise InvalidTransition(f"a {status} withdrawal cannot be marked {outcome.status}", status=status)
