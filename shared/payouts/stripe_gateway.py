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
# Transfers listed per page when looking for an earlier attempt's transfer; a withdrawal has one or two.
TRANSFER_PAGE_SIZE = 100


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

    def find_transfer(self, instruction: PayoutInstruction, account_id: str) -> str | None:
        """The transfer an earlier attempt made for this withdrawal, found by its transfer_group.

        Raises a permanent ``idempotency_conflict`` (an outcome-unknown failure) when the group holds a live
        transfer that does not match this one: money left for this withdrawal, but not as we would send it now.
        """
        found = _call(
            "list transfers",
            lambda: self._client.v1.transfers.list(
                {"transfer_group": transfer_group(instruction), "limit": TRANSFER_PAGE_SIZE}
            ),
        )
        for listed in found.auto_paging_iter():
            transfer: dict[str, Any] = listed.to_dict()
            if transfer.get("reversed") or transfer.get("amount_reversed"):
                continue  # given back to the platform (by an operator): it does not pay this withdrawal
            sent = (transfer.get("destination"), transfer.get("amount"), transfer.get("currency"))
            if sent == (account_id, instruction.amount_cents, self._currency):
                return str(transfer["id"])
            raise PermanentPayoutError(
                IDEMPOTENCY_CONFLICT,
                f"transfer {transfer['id']} for this withdrawal went to {sent[0]} ({sent[1]} {sent[2]}), "
                "not as this attempt would send it; check it in Stripe",
            )
        return None

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        transfer = _call(
            "create transfer",
            lambda: self._client.v1.transfers.create(
                {
                    "amount": instruction.amount_cents,
                    "currency": self._currency,
                    "destination": account_id,
                    "transfer_group": transfer_group(instruction),
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


def transfer_group(instruction: PayoutInstruction) -> str:
    """One per withdrawal, whatever the attempt generation: every transfer ever made for it is listed under it."""
    return f"withdrawal-{instruction.withdrawal_id}"


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
