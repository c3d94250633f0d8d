"""Stripe Connect payouts with the official ``stripe`` library: account, transfer, payout, each keyed.

Errors are sorted by what a retry could change. Transient (retry with the same key): the network, timeouts,
429 and 5xx -- the call may or may not have happened, and only the same key makes trying again safe.
Permanent (the withdrawal fails, funds held for an operator): 400/402/404 refusals, 401/403 credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import stripe

from shared.payouts.gateway import (
    IDEMPOTENCY_CONFLICT,
    PayoutInstruction,
    PermanentPayoutError,
    TransientPayoutError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class StripeGateway:
    name = "stripe"

    def __init__(
        self, api_key: str, *, api_base: str | None, timeout_seconds: float, currency: str, country: str
    ) -> None:
        # No hidden retries inside the library: the worker retries with backoff, and counts attempts.
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
            max_network_retries=0,
        )
        self._currency = currency
        self._country = country

    def create_account(self, instruction: PayoutInstruction) -> str:
        params: dict[str, Any] = {
            "type": "custom",
            "country": self._country,
            "capabilities": {"transfers": {"requested": True}},
            # Stripe's default is a daily automatic payout of the account's whole balance: it would pay our
            # transfer out by itself, besides or instead of the keyed payout the withdrawal records.
            "settings": {"payouts": {"schedule": {"interval": "manual"}}},
            "metadata": {"user_id": str(instruction.user_id)},
        }
        if instruction.email:
            params["email"] = instruction.email
        account = _call(
            "create account",
            lambda: self._client.v1.accounts.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": instruction.account_key},
            ),
        )
        return str(account.id)

    def attach_bank_account(self, instruction: PayoutInstruction, account_id: str) -> str:
        bank_account = _call(
            "attach bank account",
            lambda: self._client.v1.accounts.external_accounts.create(
                account_id,
                {"external_account": instruction.bank_token, "default_for_currency": True},
                {"idempotency_key": instruction.bank_account_key},
            ),
        )
        return str(bank_account.id)

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        transfer = _call(
            "create transfer",
            lambda: self._client.v1.transfers.create(
                {
                    "amount": instruction.amount_cents,
                    "currency": self._currency,
                    "destination": account_id,
                    "transfer_group": f"withdrawal-{instruction.withdrawal_id}",
                    "metadata": instruction.metadata,
                },
                {"idempotency_key": instruction.transfer_key},
            ),
        )
        return str(transfer.id)

    def create_payout(self, instruction: PayoutInstruction, account_id: str, bank_account_id: str) -> str:
        payout = _call(
            "create payout",
            lambda: self._client.v1.payouts.create(
                {
                    "amount": instruction.amount_cents,
                    "currency": self._currency,
                    "destination": bank_account_id,
                    "metadata": instruction.metadata,
                },
                {"idempotency_key": instruction.payout_key, "stripe_account": account_id},
            ),
        )
        return str(payout.id)


def _call(what: str, request: Callable[[], T]) -> T:
    try:
        return request()
    except stripe.StripeError as exc:
        raise classify(exc) from exc


def classify(exc: stripe.StripeError) -> TransientPayoutError | PermanentPayoutError:
    """Map a Stripe error to what the worker should do about it."""
    message = exc.user_message or str(exc) or type(exc).__name__
    if isinstance(exc, stripe.APIConnectionError):
        return TransientPayoutError("provider_unreachable", message)
    if isinstance(exc, stripe.RateLimitError):
        return TransientPayoutError("provider_rate_limited", message)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        log.error("Stripe refused our credentials (%s): check STRIPE_SECRET_KEY", exc.http_status)
        return PermanentPayoutError("provider_auth_error", message)
    if isinstance(exc, stripe.IdempotencyError):
        # Same key, different parameters: retrying with this key cannot help, so the withdrawal fails; but a call
        # with this key did happen, so the ledger treats its outcome as unknown (requeue keeps keys, cancel
        # needs force, webhooks may still decide it).
        return PermanentPayoutError(IDEMPOTENCY_CONFLICT, message)
    if isinstance(exc, (stripe.CardError, stripe.InvalidRequestError)):
        return PermanentPayoutError(exc.code or "provider_declined", message)
    # stripe.APIError: 5xx, or 409 while another request with this key is in flight. Unknown: retry.
    return TransientPayoutError("provider_error", message)
