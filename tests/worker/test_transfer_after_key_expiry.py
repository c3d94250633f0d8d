"""Stripe forgets idempotency keys after 24 hours: a later attempt finds the earlier transfer by its
transfer_group instead of creating a second one (the real ``stripe`` library against the fake Stripe server)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from shared import ledger
from shared.config import Config
from shared.db import Database
from shared.payouts.gateway import IDEMPOTENCY_CONFLICT
from shared.payouts.queue import PayoutQueue
from shared.payouts.stripe_gateway import StripeGateway
from tests.fake_stripe import API_KEY, FakeStripe, Scripted
from tests.shared.ledger.payout_helpers import make_withdrawal, reload
from worker.processor import Outcome, process_withdrawal
from worker.runtime import Runtime

TIMEOUT_S = 0.5
TRANSFERS = "/v1/transfers"


@pytest.fixture
def runtime(config: Config, database: Database, fake_stripe: FakeStripe) -> Iterator[Runtime]:
    tuned = config.replace(payout_max_attempts=5, payout_retry_base_ms=10, payout_retry_max_ms=10)
    gateway = StripeGateway(API_KEY, api_base=fake_stripe.url, timeout_seconds=TIMEOUT_S, currency="usd", country="US")
    yield Runtime(tuned, database, gateway, PayoutQueue(tuned))


def test_a_retry_after_the_key_expired_reuses_the_transfer(
    runtime: Runtime, fake_stripe: FakeStripe, db_session: Session
) -> None:
    withdrawal = make_withdrawal(db_session, amount=200)
    fake_stripe.script(TRANSFERS, Scripted(delay_s=TIMEOUT_S * 3))
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.RETRY
    fake_stripe.wait_for_request(TRANSFERS)
    deadline = time.monotonic() + 10
    while not fake_stripe.created(TRANSFERS) and time.monotonic() < deadline:
        time.sleep(0.05)
    (first,) = fake_stripe.created(TRANSFERS)
    fake_stripe.forget_idempotency_keys()  # 24 hours later

    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.PAID
    assert list(fake_stripe.created(TRANSFERS)) == [first]  # one transfer, not two
    row = reload(db_session, withdrawal)
    assert (row.status, row.provider_transfer_id) == ("paid", first)
    assert ledger.verify(db_session) == []


def test_a_first_attempt_does_not_look_up_transfers(
    runtime: Runtime, fake_stripe: FakeStripe, db_session: Session
) -> None:
    withdrawal = make_withdrawal(db_session)
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.PAID
    assert [r.method for r in fake_stripe.requests(TRANSFERS)] == ["POST"]


def test_a_reversed_transfer_is_not_reused(runtime: Runtime, fake_stripe: FakeStripe, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    fake_stripe.script(TRANSFERS, Scripted(delay_s=TIMEOUT_S * 3))
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.RETRY
    deadline = time.monotonic() + 10
    while not fake_stripe.created(TRANSFERS) and time.monotonic() < deadline:
        time.sleep(0.05)
    (first,) = fake_stripe.created(TRANSFERS)
    fake_stripe.reverse_transfer(first)  # an operator gave the money back to the platform
    fake_stripe.forget_idempotency_keys()

    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.PAID
    transfers = fake_stripe.created(TRANSFERS)
    assert len(transfers) == 2
    assert reload(db_session, withdrawal).provider_transfer_id != first


def test_a_mismatching_earlier_transfer_fails_as_outcome_unknown(
    runtime: Runtime, fake_stripe: FakeStripe, db_session: Session
) -> None:
    withdrawal = make_withdrawal(db_session)
    fake_stripe.script(TRANSFERS, Scripted(delay_s=TIMEOUT_S * 3))
    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.RETRY
    deadline = time.monotonic() + 10
    while not fake_stripe.created(TRANSFERS) and time.monotonic() < deadline:
        time.sleep(0.05)
    (first,) = fake_stripe.created(TRANSFERS)
    fake_stripe.edit_transfer(first, destination="acct_someone_else")
    fake_stripe.forget_idempotency_keys()

    assert process_withdrawal(runtime, withdrawal.id).outcome is Outcome.FAILED
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code) == ("failed", IDEMPOTENCY_CONFLICT)
    assert len(fake_stripe.created(TRANSFERS)) == 1
    with pytest.raises(ledger.InvalidTransition):
        ledger.cancel(db_session, withdrawal.id, "cli:alice")  # the money may have left: force only
