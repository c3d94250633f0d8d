"""The Stripe gateway with the real ``stripe`` library against the local fake Stripe server."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from shared.payouts.gateway import PayoutInstruction, PermanentPayoutError, TransientPayoutError
from shared.payouts.keys import idempotency_key
from shared.payouts.stripe_gateway import StripeGateway
from tests.fake_stripe import API_KEY, BANK_ACCOUNTS, FakeStripe, Scripted

TIMEOUT_S = 1


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeStripe) -> None:
    fake.reset()


def gateway(url: str, api_key: str = API_KEY) -> StripeGateway:
    return StripeGateway(api_key, api_base=url, timeout_seconds=TIMEOUT_S, currency="usd", country="US")


def instruction(bank_token: str = "btok_us_verified", generation: int = 0) -> PayoutInstruction:
    withdrawal_id = uuid.uuid4()
    return PayoutInstruction(
        withdrawal_id=withdrawal_id,
        user_id=uuid.uuid4(),
        email="payee@example.com",
        amount_cents=1234,
        currency="usd",
        bank_token=bank_token,
        attempt=1,
        generation=generation,
        account_key=idempotency_key(withdrawal_id, generation, "account"),
        bank_account_key=idempotency_key(withdrawal_id, generation, "bank_account"),
        transfer_key=idempotency_key(withdrawal_id, generation, "transfer"),
        payout_key=idempotency_key(withdrawal_id, generation, "payout"),
    )


def test_success_sends_each_step_with_its_idempotency_key(fake: FakeStripe) -> None:
    gw, ins = gateway(fake.url), instruction()
    account = gw.create_account(ins)
    bank = gw.attach_bank_account(ins, account)
    transfer = gw.create_transfer(ins, account)
    payout = gw.create_payout(ins, account, bank)
    assert (account[:5], bank[:3], transfer[:3], payout[:3]) == ("acct_", "ba_", "tr_", "po_")
    sent = fake.requests()
    assert [r.path for r in sent] == ["/v1/accounts", BANK_ACCOUNTS, "/v1/transfers", "/v1/payouts"]
    assert [r.idempotency_key for r in sent] == [
        ins.account_key,
        ins.bank_account_key,
        ins.transfer_key,
        ins.payout_key,
    ]
    assert sent[0].params.items() >= {"type": "custom", "country": "US", "email": "payee@example.com"}.items()
    assert sent[1].params.items() >= {"account": account, "external_account": "btok_us_verified"}.items()
    assert sent[2].params.items() >= {"amount": "1234", "currency": "usd", "destination": account}.items()
    assert sent[3].stripe_account == account  # the payout is made on the connected account, to the bank
    assert sent[3].params["destination"] == bank
    assert sent[3].params["metadata[withdrawal_id]"] == str(ins.withdrawal_id)


def test_same_key_is_replayed_not_paid_twice(fake: FakeStripe) -> None:
    gw, ins = gateway(fake.url), instruction()
    first = gw.create_payout(ins, "acct_x", "ba_x")
    second = gw.create_payout(ins, "acct_x", "ba_x")
    assert first == second
    assert len(fake.created("/v1/payouts")) == 1
    assert [r.replayed for r in fake.requests("/v1/payouts")] == [False, True]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Scripted(402, "card_error", "insufficient_funds", "Insufficient funds"), "insufficient_funds"),
        (Scripted(400, "invalid_request_error", "account_closed", "The bank account is closed"), "account_closed"),
        (Scripted(400, "invalid_request_error", None, "Invalid destination"), "provider_declined"),
        (Scripted(404, "invalid_request_error", "resource_missing", "No such account"), "resource_missing"),
        (Scripted(403, "invalid_request_error", None, "Not allowed"), "provider_auth_error"),
    ],
)
def test_refusals_are_permanent(fake: FakeStripe, answer: Scripted, code: str) -> None:
    fake.script("/v1/transfers", answer)
    with pytest.raises(PermanentPayoutError) as raised:
        gateway(fake.url).create_transfer(instruction(), "acct_x")
    assert raised.value.code == code


def test_bad_api_key_is_permanent(fake: FakeStripe) -> None:
    with pytest.raises(PermanentPayoutError) as raised:
        gateway(fake.url, api_key="sk_test_wrong").create_transfer(instruction(), "acct_x")
    assert raised.value.code == "provider_auth_error"
    assert fake.requests()[0].status == 401


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Scripted(429, "invalid_request_error", "rate_limit", "Too many requests"), "provider_rate_limited"),
        (Scripted(500, "api_error", None, "An unknown error occurred"), "provider_error"),
        (Scripted(503, "api_error", None, "Service unavailable"), "provider_error"),
        (Scripted(409, "invalid_request_error", "idempotency_key_in_use", "In progress"), "provider_error"),
    ],
)
def test_rate_limits_and_server_errors_are_transient_and_retry_with_the_same_key(
    fake: FakeStripe, answer: Scripted, code: str
) -> None:
    gw, ins = gateway(fake.url), instruction()
    fake.script("/v1/transfers", answer)
    with pytest.raises(TransientPayoutError) as raised:
        gw.create_transfer(ins, "acct_x")
    assert raised.value.code == code
    transfer = gw.create_transfer(ins, "acct_x")  # the retry, same key: not replayed as an error
    assert transfer in fake.created("/v1/transfers")
    assert {r.idempotency_key for r in fake.requests("/v1/transfers")} == {ins.transfer_key}


def test_a_stored_refusal_is_replayed_for_the_same_key_and_a_new_generation_gets_a_new_key(fake: FakeStripe) -> None:
    gw, ins = gateway(fake.url), instruction()
    fake.script("/v1/transfers", Scripted(402, "card_error", "insufficient_funds", "Insufficient funds"))
    for _ in range(2):
        with pytest.raises(PermanentPayoutError):
            gw.create_transfer(ins, "acct_x")
    assert fake.requests("/v1/transfers")[1].replayed
    requeued = instruction(generation=1)
    assert gw.create_transfer(requeued, "acct_x").startswith("tr_")


def test_same_key_with_different_parameters_is_a_permanent_idempotency_conflict(fake: FakeStripe) -> None:
    gw, ins = gateway(fake.url), instruction()
    gw.create_transfer(ins, "acct_x")
    with pytest.raises(PermanentPayoutError) as raised:
        gw.create_transfer(ins, "acct_other")
    assert raised.value.code == "idempotency_conflict"


def test_slow_response_past_the_timeout_is_transient_and_the_retry_gets_the_stored_result(fake: FakeStripe) -> None:
    gw, ins = gateway(fake.url), instruction()
    fake.script("/v1/payouts", Scripted(200, delay_s=TIMEOUT_S + 0.5))
    started = time.monotonic()
    with pytest.raises(TransientPayoutError) as raised:
        gw.create_payout(ins, "acct_x", "ba_x")
    assert raised.value.code == "provider_unreachable"
    assert time.monotonic() - started < TIMEOUT_S + 0.4
    time.sleep(0.7)  # the fake finishes the slow request and stores it, as Stripe would
    payout = gw.create_payout(ins, "acct_x", "ba_x")
    assert list(fake.created("/v1/payouts")) == [payout]  # outcome was unknown; the same key made it once


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(TransientPayoutError) as raised:
        gateway(f"http://127.0.0.1:{port}").create_transfer(instruction(), "acct_x")
    assert raised.value.code == "provider_unreachable"


def test_fail_token_refuses_the_bank_account(fake: FakeStripe) -> None:
    with pytest.raises(PermanentPayoutError) as raised:
        gateway(fake.url).attach_bank_account(instruction("tok_fail_account_closed"), "acct_x")
    assert raised.value.code == "account_closed"


def test_connected_accounts_are_created_with_manual_payouts(fake: FakeStripe) -> None:
    # Stripe's default schedule pays a connected account's balance out daily on its own: our transfer would be
    # paid out by Stripe besides (or instead of) our keyed payout, outside the withdrawal's bookkeeping.
    gateway(fake.url).create_account(instruction())
    (sent,) = fake.requests("/v1/accounts")
    assert sent.params["settings[payouts][schedule][interval]"] == "manual"
