"""The issue's "Must show", end to end: gunicorn API, Celery worker process, Redis, PostgreSQL, and the real
``stripe`` library against the fake Stripe server, which counts every call. The ledger verifies after each."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from api import create_app
from shared import ledger
from shared.config import Config
from shared.db import Database
from shared.models import Withdrawal
from tests.fake_stripe import BANK_ACCOUNTS, FakeStripe, Scripted, payout_event, sign_webhook
from tests.worker.conftest import WEBHOOK_SECRET, Client
from tests.worker.harness import CeleryProcess

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("payout_worker")]


def assert_books_balance(database: Database) -> None:
    with database.session() as session:
        assert ledger.verify(session) == []


def test_withdraw_is_paid_with_one_call_per_step(
    user: Callable[[str], Client], fake_stripe: FakeStripe, database: Database
) -> None:
    alice = user("alice@example.com")
    withdrawal = alice.withdraw(300, "btok_us_verified")
    paid = alice.wait_for(withdrawal["id"], {"paid"})
    assert (paid["attempts"], paid["failure_code"]) == (1, None)
    assert alice.balance() == 700
    steps = ("/v1/accounts", BANK_ACCOUNTS, "/v1/transfers", "/v1/payouts")
    assert [len(fake_stripe.requests(p)) for p in steps] == [1, 1, 1, 1]
    assert fake_stripe.payouts_by_withdrawal() == {withdrawal["id"]: 1}
    # A second withdrawal reuses the connected account created by the first, and pays to its own bank token.
    second = alice.withdraw(200, "btok_second_bank", fund=10)
    alice.wait_for(second["id"], {"paid"})
    assert len(fake_stripe.created("/v1/accounts")) == 1
    assert [r.params["external_account"] for r in fake_stripe.requests(BANK_ACCOUNTS)] == [
        "btok_us_verified",
        "btok_second_bank",
    ]
    assert_books_balance(database)


def test_polling_uses_etags(user: Callable[[str], Client]) -> None:
    bob = user("bob@example.com")
    withdrawal = bob.withdraw(300, "btok_us_verified")
    paid = bob.wait_for(withdrawal["id"], {"paid"})
    first = bob.get(f"/withdrawals/{withdrawal['id']}")
    etag = first.headers["ETag"]
    not_modified = bob.get(f"/withdrawals/{withdrawal['id']}", **{"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert first.json() == paid


def test_permanent_failure_holds_funds_until_cancel_refunds_exactly_once(
    user: Callable[[str], Client], fake_stripe: FakeStripe, stack_config: Config, database: Database
) -> None:
    carol = user("carol@example.com")
    withdrawal = carol.withdraw(300, "tok_fail_account_closed")
    failed = carol.wait_for(withdrawal["id"], {"failed"})
    assert (failed["failure_code"], failed["attempts"]) == ("account_closed", 1)
    assert carol.balance() == 700  # held, not back in the balance
    assert fake_stripe.created("/v1/payouts") == {}
    assert_books_balance(database)

    cli = create_app(stack_config).test_cli_runner()
    first = cli.invoke(args=["payouts", "cancel", withdrawal["id"], "--reason", "bank closed", "--actor", "ops"])
    assert first.exit_code == 0, first.output
    assert carol.balance() == 1000
    second = cli.invoke(args=["payouts", "cancel", withdrawal["id"]])
    assert second.exit_code != 0
    assert "invalid_transition" in second.output
    assert carol.balance() == 1000
    assert carol.get(f"/withdrawals/{withdrawal['id']}").json()["status"] == "canceled"
    assert cli.invoke(args=["ledger", "verify"]).exit_code == 0


def test_transient_failures_are_retried_with_the_same_key_until_paid(
    user: Callable[[str], Client], fake_stripe: FakeStripe, database: Database
) -> None:
    dave = user("dave@example.com")
    withdrawal = dave.withdraw(300, "tok_flaky_2")
    paid = dave.wait_for(withdrawal["id"], {"paid"})
    assert paid["attempts"] == 3
    payouts = fake_stripe.requests("/v1/payouts")
    assert [r.status for r in payouts] == [500, 500, 200]
    assert len({r.idempotency_key for r in payouts}) == 1
    assert fake_stripe.payouts_by_withdrawal() == {withdrawal["id"]: 1}
    assert [len(fake_stripe.requests(p)) for p in ("/v1/accounts", BANK_ACCOUNTS, "/v1/transfers")] == [1, 1, 1]
    assert_books_balance(database)


def test_operator_requeue_after_a_definite_failure_pays_with_new_keys(
    user: Callable[[str], Client], fake_stripe: FakeStripe, stack_config: Config, database: Database
) -> None:
    erin = user("erin@example.com")
    withdrawal = erin.withdraw(300, "btok_us_verified")
    erin.wait_for(withdrawal["id"], {"paid"})
    fake_stripe.reset()
    # The payout is declined once: the withdrawal fails; the operator fixes things and requeues.
    fake_stripe.script("/v1/payouts", Scripted(400, "invalid_request_error", "bank_account_restricted", "no"))
    again = erin.withdraw(200, "btok_us_verified", fund=10)
    failed = erin.wait_for(again["id"], {"failed"})
    assert failed["failure_code"] == "bank_account_restricted"
    cli = create_app(stack_config).test_cli_runner()
    result = cli.invoke(args=["payouts", "requeue", again["id"], "--actor", "ops"])
    assert result.exit_code == 0, result.output
    assert "enqueued" in result.output
    paid = erin.wait_for(again["id"], {"paid"})
    assert paid["attempts"] == 1
    payout_keys = [r.idempotency_key for r in fake_stripe.requests("/v1/payouts")]
    assert len(payout_keys) == 2 and payout_keys[0] != payout_keys[1] and payout_keys[1].endswith("-g1-payout")
    assert len(fake_stripe.requests("/v1/transfers")) == 1  # the transfer was made once, before the failure
    assert_books_balance(database)


def post_webhook(base_url: str, payload: str, secret: str = WEBHOOK_SECRET) -> requests.Response:
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign_webhook(payload, secret)}
    return requests.post(f"{base_url}/webhooks/stripe", data=payload, headers=headers, timeout=10)


def test_duplicate_webhook_applies_once_and_paid_then_failed_fails(
    user: Callable[[str], Client], database: Database
) -> None:
    frank = user("frank@example.com")
    withdrawal = frank.withdraw(300, "btok_us_verified")
    paid = frank.wait_for(withdrawal["id"], {"paid"})
    with database.session() as session:
        payout_id = session.get(Withdrawal, uuid.UUID(withdrawal["id"])).provider_payout_id
    paid_event = payout_event("evt_paid_1", "payout.paid", payout_id, withdrawal["id"])
    assert post_webhook(frank.base_url, paid_event).json() == {"received": True, "outcome": "applied"}
    assert post_webhook(frank.base_url, paid_event).json() == {"received": True, "outcome": "duplicate"}
    assert frank.get(f"/withdrawals/{withdrawal['id']}").json() == paid  # nothing changed

    forged = post_webhook(frank.base_url, payout_event("evt_x", "payout.failed", payout_id), secret="whsec_wrong")
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "invalid_signature")
    unsigned = requests.post(
        f"{frank.base_url}/webhooks/stripe", data=paid_event, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert unsigned.status_code == 400
    assert frank.get(f"/withdrawals/{withdrawal['id']}").json()["status"] == "paid"

    failed_event = payout_event(
        "evt_failed_1", "payout.failed", payout_id, withdrawal["id"], failure_code="account_closed"
    )
    for _ in range(2):
        assert post_webhook(frank.base_url, failed_event).status_code == 200
    failed = frank.get(f"/withdrawals/{withdrawal['id']}").json()
    assert (failed["status"], failed["failure_code"]) == ("failed", "account_closed")
    assert frank.balance() == 700  # held for an operator
    assert_books_balance(database)


def test_the_running_worker_is_a_real_process(payout_worker: CeleryProcess) -> None:
    assert payout_worker.process is not None and payout_worker.process.poll() is None
    assert "payouts" in payout_worker.log()


def test_a_burst_of_withdrawals_is_paid_in_batches_each_exactly_once(
    user: Callable[[str], Client], fake_stripe: FakeStripe, database: Database
) -> None:
    clients = [user(f"burst-{n}@example.com") for n in range(8)]
    for client in clients:
        assert client.post("/deposit", {"material": "aluminum", "units": 100}).status_code == 201

    def withdraw_three(client: Client) -> list[str]:
        ids = []
        for _ in range(3):
            response = client.post("/withdraw", {"amount_cents": 100, "bank_token": "btok_us_verified"})
            assert response.status_code == 202, response.text
            ids.append(response.json()["withdrawal"]["id"])
        return ids

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(withdraw_three, clients))
    for client, ids in zip(clients, batches, strict=True):
        for withdrawal_id in ids:
            client.wait_for(withdrawal_id, {"paid"})
    every_id = [withdrawal_id for ids in batches for withdrawal_id in ids]
    assert fake_stripe.payouts_by_withdrawal() == dict.fromkeys(every_id, 1)
    assert all(client.balance() == 700 for client in clients)
    with database.session() as session:
        for ids in batches:  # racing first withdrawals of a user all pay through the account stored first
            accounts = {session.get(Withdrawal, uuid.UUID(i)).provider_account_id for i in ids}  # type: ignore[union-attr]
            assert len(accounts) == 1 and None not in accounts
    assert_books_balance(database)
