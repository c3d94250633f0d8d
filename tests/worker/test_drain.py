"""Draining due withdrawals in batches against PostgreSQL: parallel provider calls, one account per user, every
outcome recorded in one go, and the hand-over when a batch comes back full."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import ledger
from shared.config import Config
from shared.db import Database
from shared.models import Withdrawal
from shared.payouts.gateway import PayoutInstruction, PermanentPayoutError, TransientPayoutError
from shared.payouts.queue import PayoutQueue
from shared.payouts.simulated import SimulatedGateway
from tests.factories import fund, make_account
from tests.shared.ledger.payout_helpers import make_withdrawal, reload
from worker.processor import UNEXPECTED_ERROR, Outcome, drain_once
from worker.runtime import Runtime


@dataclass
class CountingGateway(SimulatedGateway):
    """The simulated gateway, counting calls per step; ``account_error`` makes account creation raise."""

    calls: Counter[str] = field(default_factory=Counter)
    account_error: Exception | None = None
    name: str = "counting"

    def __post_init__(self) -> None:
        super().__init__()

    def create_account(self, instruction: PayoutInstruction) -> str:
        self.calls["account"] += 1
        if self.account_error is not None:
            raise self.account_error
        return super().create_account(instruction)

    def create_payout(self, instruction: PayoutInstruction, account_id: str, bank_account_id: str) -> str:
        self.calls["payout"] += 1
        if instruction.bank_token == "tok_crash":
            raise KeyError("a bug in the gateway")
        return super().create_payout(instruction, account_id, bank_account_id)


@pytest.fixture
def runtime(config: Config, database: Database) -> Iterator[Runtime]:
    tuned = config.replace(payout_max_attempts=3, payout_batch_size=4, payout_concurrency=3)
    yield Runtime(tuned, database, CountingGateway(), PayoutQueue(tuned))


def gateway(runtime: Runtime) -> CountingGateway:
    assert isinstance(runtime.gateway, CountingGateway)
    return runtime.gateway


def test_a_batch_pays_every_withdrawal_creating_one_account_per_user(runtime: Runtime, db_session: Session) -> None:
    account = make_account(db_session)
    fund(db_session, account, 1000)
    policy = ledger.WithdrawalPolicy(min_cents=1)
    same_user = [ledger.request_withdrawal(db_session, account, 100, "tok_ok", policy).withdrawal for _ in range(2)]
    others = [make_withdrawal(db_session) for _ in range(2)]
    full: list[bool] = []

    attempts = drain_once(runtime, on_full_batch=lambda: full.append(True))
    assert [a.result.outcome for a in attempts] == [Outcome.PAID] * 4
    assert full == [True]  # the batch came back full: another drain was woken before paying
    assert gateway(runtime).calls == Counter(account=3, payout=4)
    rows = [reload(db_session, w) for w in same_user]
    assert {row.status for row in rows} == {"paid"} and rows[0].provider_account_id == rows[1].provider_account_id
    assert all(reload(db_session, w).provider_bank_account_id for w in others)
    assert drain_once(runtime) == []
    assert ledger.verify(db_session) == []


def test_each_withdrawal_of_a_batch_ends_its_own_way(runtime: Runtime, db_session: Session) -> None:
    paid = make_withdrawal(db_session, token="tok_ok")
    refused = make_withdrawal(db_session, token="tok_fail_account_closed")
    flaky = make_withdrawal(db_session, token="tok_flaky_1")
    crash = make_withdrawal(db_session, token="tok_crash")
    full: list[bool] = []

    results = {a.withdrawal_id: a.result for a in drain_once(runtime, on_full_batch=lambda: full.append(True))}
    assert results[paid.id].outcome is Outcome.PAID
    assert (results[refused.id].outcome, results[refused.id].detail) == (Outcome.FAILED, "account_closed")
    assert (results[flaky.id].outcome, results[flaky.id].detail) == (Outcome.RETRY, "simulated_transient")
    assert (results[crash.id].outcome, results[crash.id].detail) == (Outcome.RETRY, UNEXPECTED_ERROR)
    assert results[flaky.id].retry_in is not None and results[flaky.id].retry_in > 0
    assert (reload(db_session, refused).status, reload(db_session, refused).provider_transfer_id) == ("failed", None)
    row = reload(db_session, flaky)
    assert (row.status, row.attempts, row.failure_code) == ("pending", 1, None)
    assert row.provider_transfer_id is not None  # recovery point: the next attempt does not transfer again
    assert reload(db_session, crash).status == "pending"
    assert ledger.verify(db_session) == []


def test_a_transient_error_past_the_budget_fails_as_retries_exhausted(runtime: Runtime, db_session: Session) -> None:
    gateway(runtime).account_error = TransientPayoutError("provider_unreachable", "timeout")
    withdrawal = make_withdrawal(db_session)
    db_session.execute(update(Withdrawal).where(Withdrawal.id == withdrawal.id).values(attempts=2))
    db_session.commit()
    (attempt,) = drain_once(runtime)
    assert (attempt.result.outcome, attempt.result.detail) == (Outcome.FAILED, ledger.RETRIES_EXHAUSTED)
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.attempts) == ("failed", "retries_exhausted", 3)
    assert "provider_unreachable" in (row.failure_message or "")


@pytest.mark.parametrize(
    ("error", "status", "outcome"),
    [
        (PermanentPayoutError("invalid_country", "no"), "failed", Outcome.FAILED),
        (TransientPayoutError("rate_limited", "429"), "pending", Outcome.RETRY),
    ],
)
def test_a_failed_account_creation_ends_every_withdrawal_waiting_on_it(
    runtime: Runtime, db_session: Session, error: Exception, status: str, outcome: Outcome
) -> None:
    gateway(runtime).account_error = error
    account = make_account(db_session)
    fund(db_session, account, 1000)
    policy = ledger.WithdrawalPolicy(min_cents=1)
    withdrawals = [ledger.request_withdrawal(db_session, account, 100, "tok_ok", policy).withdrawal for _ in range(2)]
    attempts = drain_once(runtime)
    assert [a.result.outcome for a in attempts] == [outcome, outcome]
    assert {reload(db_session, w).status for w in withdrawals} == {status}
    assert gateway(runtime).calls == Counter(account=1)  # asked once for the user, never paid out
    assert ledger.verify(db_session) == []
