"""Claiming a withdrawal for the payout pipeline, and finding the stranded ones (the sweeper).

Recording what an attempt ended in (paid, failed, back to pending, with how far it got) is
:mod:`shared.ledger.payout_batch`, for one withdrawal or a batch. Each transition is one short atomic phase
guarded by a conditional UPDATE, so any number of workers, webhooks and operators can race on a withdrawal and
exactly one of them wins; a transition that is not allowed raises :class:`InvalidTransition` and writes
nothing. The provider is called between these phases, never inside one.

A claim is fenced by ``(attempts, attempt_generation)``: a worker whose lease was taken over by another can no
longer record anything, because the other claim bumped ``attempts``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, CursorResult, Executable, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, atomic, utcnow
from shared.ledger.errors import InvalidTransition, NotFound
from shared.models import User, Withdrawal, WithdrawalStatus
from shared.payouts.gateway import IDEMPOTENCY_CONFLICT
from shared.payouts.keys import idempotency_key

# The failure code of a withdrawal whose transient errors outlasted PAYOUT_MAX_ATTEMPTS. Unlike a provider's
# refusal, the outcome of its last call is unknown, so a requeue keeps its idempotency keys.
RETRIES_EXHAUSTED = "retries_exhausted"
# Failure codes after which the provider may have moved the money after all: a requeue keeps the keys (so a
# call that did go through is replayed, not repeated), a cancel needs force, and a webhook may still decide
# the withdrawal. An idempotency conflict proves an earlier call with that key reached the provider.
OUTCOME_UNKNOWN_CODES = frozenset({RETRIES_EXHAUSTED, IDEMPOTENCY_CONFLICT})


def outcome_unknown(failure_code: str | None) -> bool:
    return failure_code in OUTCOME_UNKNOWN_CODES


class RetriesExhausted(InvalidTransition):
    """The attempt budget was spent before this claim: the withdrawal has been marked failed instead."""


@dataclass(frozen=True, slots=True)
class PayoutPolicy:
    lease_seconds: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker needs to pay one withdrawal, and the fence that proves it still owns it."""

    withdrawal_id: uuid.UUID
    user_id: uuid.UUID
    email: str | None
    amount_cents: int
    bank_token: str
    attempt: int
    generation: int
    account_id: str | None
    bank_account_id: str | None
    transfer_id: str | None
    # An earlier claim already sent a transfer with this withdrawal's keys (an earlier attempt, or a generation
    # requeued after an unknown outcome): the provider may have made it and, after 24 hours, forgotten the key.
    transfer_key_used: bool
    account_key: str
    bank_account_key: str
    transfer_key: str
    payout_key: str
    # X-Request-ID of the POST /withdraw that created it, for the payout's log lines.
    request_id: str | None = None


def rowcount(session: Session, statement: Executable, params: Any = None) -> int:
    """Rows a conditional UPDATE/INSERT changed (in all, for a list of params): 1 per row this caller won."""
    return int(cast(CursorResult[Any], session.execute(statement, params)).rowcount)


def _load(session: Session, withdrawal_id: uuid.UUID) -> Withdrawal:
    withdrawal = session.get(Withdrawal, withdrawal_id, populate_existing=True)
    if withdrawal is None:
        raise NotFound("no such withdrawal", withdrawal_id=str(withdrawal_id))
    return withdrawal


def claim_withdrawal(
    session: Session, withdrawal_id: uuid.UUID, policy: PayoutPolicy, now: datetime | None = None
) -> Claim:
    """``pending`` (or ``processing`` whose lease expired) -> ``processing`` with a lease. Commits.

    Raises :class:`InvalidTransition` when another worker holds it or it is final, and
    :class:`RetriesExhausted` (after marking it failed) when its attempt budget is already spent.
    """
    now = now or utcnow()
    with atomic(session):
        withdrawal = _load(session, withdrawal_id)
        status, attempts = withdrawal.status, withdrawal.attempts
        lease = withdrawal.lease_expires_at
        if status == WithdrawalStatus.PROCESSING and lease is not None and lease > now:
            raise InvalidTransition("another worker holds this withdrawal", lease_expires_at=lease.isoformat())
        if status not in (WithdrawalStatus.PENDING, WithdrawalStatus.PROCESSING):
            raise InvalidTransition(f"a {status} withdrawal cannot be processed", status=status)
        if attempts >= policy.max_attempts:
            _fail(session, _same_state(withdrawal), RETRIES_EXHAUSTED, f"gave up after {attempts} attempts", now)
            claim = None
        else:
            user = session.execute(select(User.email, User.stripe_account_id).where(User.id == withdrawal.user_id))
            email, account_id = user.one()
            if rowcount(session, TAKE, take_params(withdrawal, policy, now)) != 1:
                raise InvalidTransition("another worker claimed this withdrawal first")
            claim = claim_of(withdrawal, email, account_id)
    if claim is None:  # raised after the commit, so the failure is recorded
        raise RetriesExhausted("the attempt budget is spent", attempts=attempts)
    return claim


def _same_state(withdrawal: Withdrawal) -> list[ColumnElement[bool]]:
    """The row exactly as ``withdrawal`` was read: a conditional UPDATE on it wins only if nobody moved it since."""
    return [
        Withdrawal.id == withdrawal.id,
        Withdrawal.status == withdrawal.status,
        Withdrawal.attempts == withdrawal.attempts,
        Withdrawal.attempt_generation == withdrawal.attempt_generation,
    ]


class ClaimableRow(Protocol):
    """A withdrawal as read before its claim: the ORM object, or a row of :data:`DUE_COLUMNS`."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    amount_cents: int
    bank_token: str
    attempts: int
    attempt_generation: int
    provider_account_id: str | None
    provider_bank_account_id: str | None
    provider_transfer_id: str | None
    transfer_idempotency_key: str | None
    request_id: str | None


_withdrawals: Any = Withdrawal.__table__
# The row exactly as read (parameters read_*): an UPDATE on it wins only if nobody moved the withdrawal since.
AS_READ = (
    _withdrawals.c.id == bindparam("read_id"),
    _withdrawals.c.status == bindparam("read_status"),
    _withdrawals.c.attempts == bindparam("read_attempts"),
    _withdrawals.c.attempt_generation == bindparam("read_generation"),
)
# Prebuilt (a batch claims a hundred rows; building a statement per row cost more than running it).
TAKE = (
    update(_withdrawals)
    .where(*AS_READ)
    .values(
        status=WithdrawalStatus.PROCESSING.value,
        attempts=bindparam("new_attempts"),
        lease_expires_at=bindparam("new_lease", type_=UTCDateTime()),
        next_attempt_at=None,
        transfer_idempotency_key=bindparam("new_transfer_key"),
        payout_idempotency_key=bindparam("new_payout_key"),
        updated_at=bindparam("new_now", type_=UTCDateTime()),
    )
)
STEPS = ("account", "bank_account", "transfer", "payout")


def take_params(withdrawal: ClaimableRow, policy: PayoutPolicy, now: datetime) -> dict[str, Any]:
    """The parameters of :data:`TAKE` for this withdrawal as read."""
    return {
        "read_id": withdrawal.id,
        "read_status": withdrawal.status,
        "read_attempts": withdrawal.attempts,
        "read_generation": withdrawal.attempt_generation,
        "new_attempts": withdrawal.attempts + 1,
        "new_lease": now + timedelta(seconds=policy.lease_seconds),
        "new_transfer_key": idempotency_key(withdrawal.id, withdrawal.attempt_generation, "transfer"),
        "new_payout_key": idempotency_key(withdrawal.id, withdrawal.attempt_generation, "payout"),
        "new_now": now,
    }


def claim_of(withdrawal: ClaimableRow, email: str | None, user_account_id: str | None) -> Claim:
    """The claim on ``withdrawal`` (as read before :data:`TAKE` moved it)."""
    generation = withdrawal.attempt_generation
    keys = {step: idempotency_key(withdrawal.id, generation, step) for step in STEPS}
    return Claim(
        withdrawal_id=withdrawal.id,
        user_id=withdrawal.user_id,
        email=email,
        amount_cents=withdrawal.amount_cents,
        bank_token=withdrawal.bank_token,
        attempt=withdrawal.attempts + 1,
        generation=generation,
        account_id=withdrawal.provider_account_id or user_account_id,
        bank_account_id=withdrawal.provider_bank_account_id,
        transfer_id=withdrawal.provider_transfer_id,
        transfer_key_used=withdrawal.transfer_idempotency_key is not None or withdrawal.attempts > 0,
        account_key=keys["account"],
        bank_account_key=keys["bank_account"],
        transfer_key=keys["transfer"],
        payout_key=keys["payout"],
        request_id=withdrawal.request_id,
    )


def _fail(session: Session, where: list[ColumnElement[bool]], code: str, message: str, now: datetime) -> int:
    return rowcount(
        session,
        update(Withdrawal)
        .where(*where)
        .values(
            status=WithdrawalStatus.FAILED,
            failure_code=code[:64],
            failure_message=message,
            lease_expires_at=None,
            next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )


def take_stranded(session: Session, grace_seconds: int, limit: int, now: datetime | None = None) -> list[uuid.UUID]:
    """Withdrawals nobody is working on: ``pending`` and due, or ``processing`` past its lease. Commits.

    Each one returned is pushed ``grace_seconds`` into the future so the next sweep does not enqueue it again
    while its message is still in the queue. A fresh ``pending`` withdrawal gets the same grace, counted from
    its creation, to let the API's own enqueue reach a worker first.
    """
    now = now or utcnow()
    grace = timedelta(seconds=grace_seconds)
    not_deferred = or_(Withdrawal.next_attempt_at.is_(None), Withdrawal.next_attempt_at <= now)
    stranded = or_(
        and_(
            Withdrawal.status == WithdrawalStatus.PENDING,
            or_(
                Withdrawal.next_attempt_at <= now,
                and_(Withdrawal.next_attempt_at.is_(None), Withdrawal.updated_at <= now - grace),
            ),
        ),
        and_(Withdrawal.status == WithdrawalStatus.PROCESSING, Withdrawal.lease_expires_at < now, not_deferred),
    )
    with atomic(session):
        ids = list(
            session.execute(
                select(Withdrawal.id)
                .where(stranded)
                .order_by(Withdrawal.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if ids:
            rowcount(
                session,
                update(Withdrawal)
                .where(Withdrawal.id.in_(ids))
                .values(next_attempt_at=now + grace)
                .execution_options(synchronize_session=False),
            )
    return ids
