"""Nothing lost, nothing paid twice: a worker SIGKILLed mid-payout, and Redis down during POST /withdraw."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared import ledger
from shared.config import Config
from shared.db import Database
from tests.fake_stripe import FakeStripe
from tests.live_server import LiveServer, start_live_server
from tests.worker.conftest import LEASE_S, SWEEP_S, Client, stack_env
from tests.worker.harness import RedisServer, process_env, start_beat, start_worker
from worker import sweeper
from worker.runtime import Runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime(stack_config: Config) -> Iterator[Runtime]:
    """What the sweeper task uses inside a worker, built here so the test can call run_once() itself."""
    built = Runtime.from_config(stack_config)
    yield built
    built.queue.close()
    built.database.dispose()


def test_worker_killed_mid_payout_pays_each_withdrawal_exactly_once_after_restart(
    env: dict[str, str], fake_stripe: FakeStripe, runtime: Runtime, database: Database, api_server: LiveServer
) -> None:
    users = [Client(api_server.url, f"kill{i}@example.com") for i in range(3)]
    fake_stripe.delay("/v1/payouts", 2.0)  # every payout answer is slow: the worker is inside the call
    worker = start_worker(env, "doomed")
    try:
        withdrawals = [u.withdraw(300, "btok_us_verified") for u in users]
        fake_stripe.wait_for_request("/v1/payouts", count=3, timeout=30)
    finally:
        worker.kill()  # SIGKILL while all three payout calls are in flight
    killed_at = time.monotonic()
    fake_stripe.delay("/v1/payouts", 0)
    for user, withdrawal in zip(users, withdrawals, strict=True):
        assert user.get(f"/withdrawals/{withdrawal['id']}").json()["status"] == "processing"

    time.sleep(2.5)  # the fake finishes the abandoned calls and stores them under their idempotency keys
    assert len(fake_stripe.created("/v1/payouts")) == 3
    restarted = start_worker(env, "restarted")
    try:
        while time.monotonic() - killed_at < LEASE_S + 0.5:
            time.sleep(0.2)  # until the dead worker's leases run out
        assert sweeper.run_once(runtime) == 3
        for user, withdrawal in zip(users, withdrawals, strict=True):
            paid = user.wait_for(withdrawal["id"], {"paid"})
            assert paid["attempts"] == 2
    finally:
        restarted.stop()

    # Exactly one payout per withdrawal; the second attempt's calls were replays of the stored results.
    assert fake_stripe.payouts_by_withdrawal() == {w["id"]: 1 for w in withdrawals}
    assert sum(r.replayed for r in fake_stripe.requests("/v1/payouts")) == 3
    assert len(fake_stripe.created("/v1/transfers")) == 3
    with database.session() as session:
        assert ledger.verify(session) == []


def test_redis_down_during_withdraw_is_accepted_then_paid_by_the_sweeper_when_it_returns(
    database_url: str, fake_stripe: FakeStripe, database: Database
) -> None:
    broker = RedisServer().start()
    env = process_env(stack_env(database_url, broker.url, fake_stripe.url))
    api = start_live_server(env, workers=1, threads=2)
    worker = start_worker(env, "outage")
    beat = start_beat(env)
    try:
        grace = Client(api.url, "grace@example.com")
        assert grace.post("/deposit", {"material": "aluminum", "units": 100}).status_code == 201
        broker.stop()
        started = time.monotonic()
        response = grace.post("/withdraw", {"amount_cents": 300, "bank_token": "btok_us_verified"})
        elapsed = time.monotonic() - started
        assert response.status_code == 202, response.text
        withdrawal = response.json()["withdrawal"]
        assert elapsed < 5, f"POST /withdraw took {elapsed:.2f}s with Redis down"
        assert "could not enqueue withdrawal" in api.log()
        time.sleep(SWEEP_S + 1)
        assert grace.get(f"/withdrawals/{withdrawal['id']}").json()["status"] == "pending"
        assert grace.balance() == 700

        broker.start()  # same port: worker and beat reconnect; beat's sweeper finds the stranded withdrawal
        paid = grace.wait_for(withdrawal["id"], {"paid"}, timeout=60)
        assert paid["attempts"] == 1
        assert fake_stripe.payouts_by_withdrawal() == {withdrawal["id"]: 1}
        print(f"POST /withdraw with Redis down answered in {elapsed * 1000:.0f} ms")
    finally:
        beat.stop()
        worker.stop()
        api.stop()
        broker.cleanup()
    with database.session() as session:
        assert ledger.verify(session) == []
