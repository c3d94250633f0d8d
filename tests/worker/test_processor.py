"""The payout processor against PostgreSQL with an in-process gateway: every outcome and recovery point."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from shared import ledger
from shared.config import Config
from shared.db import Database
from shared.payouts.gateway import PayoutInstruction, PermanentPayoutError, TransientPayoutError
from shared.payouts.queue import PayoutQueue
from shared.payouts.simulated import SimulatedGateway
from tests.shared.ledger.payout_helpers import balance, make_withdrawal, reload
from worker.processor import Outcome, process_withdrawal
from worker.runtime import Runtime


@dataclass
class ScriptedGateway:
    """Wraps the simulated gateway; raises the scripted errors at the named steps first."""

    errors: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    name: str = "scripted"

    def _step(self, step: str, instruction: PayoutInstruction, key: str) -> None:
        self.calls.append((step, key))
        if self.errors.get(step):
            raise self.errors[step].pop(0)

    def create_account(self, instruction: PayoutInstruction) -> str:
        self._step("account", instruction, instruction.account_key)
        return SimulatedGateway().create_account(instruction)

    def attach_bank_account(self, instruction: PayoutInstruction, account_id: str) -> str:
        self._step("bank_account", instruction, instruction.bank_account_key)
        return SimulatedGateway().attach_bank_account(instruction, account_id)

    def find_transfer(self, instruction: PayoutInstruction, account_id: str) -> str | None:
        self._step("find_transfer", instruction, instruction.transfer_key)
        return None

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        self._step("transfer", instruction, instruction.transfer_key)
        return SimulatedGateway().create_transfer(instruction, account_id)

    def create_payout(self, instruction: PayoutInstruction, account_id: str, bank_account_id: str) -> str:
        self._step("payout", instruction, instruction.payout_key)
        return SimulatedGateway().create_payout(instruction, account_id, bank_account_id)


@pytest.fixture
def runtime(config: Config, database: Database) -> Iterator[Runtime]:
    tuned = config.replace(payout_max_attempts=3, payout_retry_base_ms=1000, payout_retry_max_ms=4000)
    yield Runtime(tuned, database, ScriptedGateway(), PayoutQueue(tuned))


def gateway(runtime: Runtime) -> ScriptedGateway:
    assert isinstance(runtime.gateway, ScriptedGateway)
    return runtime.gateway


def test_pays_through_account_transfer_and_payout(runtime: Runtime, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    result = process_withdrawal(runtime, withdrawal.id)
    assert result.outcome is Outcome.PAID
    row = reload(db_session, withdrawal)
    assert (row.status, row.attempts) == ("paid", 1)
    assert row.provider_account_id and row.provider_transfer_id and row.provider_payout_id == result.detail
    assert row.provider_bank_account_id
    assert [step for step, _ in gateway(runtime).calls] == ["account", "bank_account", "transfer", "payout"]
    assert ledger.verify(db_session) == []


def test_a_permanent_error_fails_and_holds_the_funds(runtime: Runtime, db_session: Session) -> None:
    gateway(runtime).errors["transfer"] = [PermanentPayoutError("account_closed", "closed")]
    withdrawal = make_withdrawal(db_session)
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.FAILED
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.provider_transfer_id) == ("failed", "account_closed", None)
    assert balance(db_session, withdrawal) == 700


def test_a_transient_error_releases_for_a_retry_with_backoff(runtime: Runtime, db_session: Session) -> None:
    gateway(runtime).errors["payout"] = [TransientPayoutError("provider_error", "500")]
    withdrawal = make_withdrawal(db_session)
    result = process_withdrawal(runtime, withdrawal.id)
    assert result.outcome is Outcome.RETRY
    assert result.retry_in is not None and 0.5 <= result.retry_in <= 1.0
    row = reload(db_session, withdrawal)
    assert (row.status, row.attempts, row.failure_code) == ("pending", 1, None)
    assert row.provider_transfer_id is not None  # recovery point: the transfer is done and recorded

    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.PAID
    steps = gateway(runtime).calls
    assert [s for s, _ in steps] == ["account", "bank_account", "transfer", "payout", "payout"]  # no repeats
    assert steps[3][1] == steps[4][1]  # same idempotency key for the unknown outcome


def test_transient_errors_past_the_budget_fail_as_retries_exhausted(runtime: Runtime, db_session: Session) -> None:
    gateway(runtime).errors["payout"] = [TransientPayoutError("provider_unreachable", "timeout")] * 3
    withdrawal = make_withdrawal(db_session)
    outcomes = [process_withdrawal(runtime, withdrawal.id).outcome for _ in range(3)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.attempts) == ("failed", "retries_exhausted", 3)
    assert "provider_unreachable" in (row.failure_message or "")
    assert balance(db_session, withdrawal) == 700


def test_duplicate_deliveries_and_unknown_ids_are_skipped(runtime: Runtime, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.PAID
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.SKIPPED
    assert process_withdrawal(runtime, uuid.uuid4()).outcome is Outcome.SKIPPED
    assert len(gateway(runtime).calls) == 4


def test_a_claim_left_by_a_dead_worker_at_the_budget_fails_without_calling(
    runtime: Runtime, db_session: Session
) -> None:
    from datetime import timedelta

    from shared.db import utcnow

    withdrawal = make_withdrawal(db_session)
    lease = timedelta(seconds=runtime.policy.lease_seconds + 1)
    for died in range(3, 0, -1):  # three workers took it in turn, and each died holding it
        ledger.claim_withdrawal(db_session, withdrawal.id, runtime.policy, utcnow() - died * lease)
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.FAILED
    assert reload(db_session, withdrawal).failure_code == "retries_exhausted"
    assert gateway(runtime).calls == []
