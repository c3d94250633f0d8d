"""The payout gateway protocol: three idempotent steps, each keyed by the caller.

A payout through Stripe Connect is: create the user's connected account (first withdrawal only, with the
bank token as its external account), transfer the amount from the platform to that account, then pay it out
from that account to the bank. The worker records each result before the next step (recovery points).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


class PayoutError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientPayoutError(PayoutError):
    """Not refused: unreachable, timed out, rate limited, or a provider error. Retry with the SAME key.

    The outcome may be unknown (a timeout or a 5xx can hide a success); only the same key makes a retry safe.
    """


class PermanentPayoutError(PayoutError):
    """The provider definitely refused (bad bank account, declined, bad credentials). Retrying cannot help."""


@dataclass(frozen=True, slots=True)
class PayoutInstruction:
    withdrawal_id: uuid.UUID
    user_id: uuid.UUID
    email: str | None
    amount_cents: int
    currency: str
    bank_token: str
    attempt: int
    generation: int
    account_key: str
    transfer_key: str
    payout_key: str

    @property
    def metadata(self) -> dict[str, str]:
        """Sent with transfers and payouts: lets webhooks find the withdrawal, and people read Stripe."""
        return {"withdrawal_id": str(self.withdrawal_id), "attempt_generation": str(self.generation)}


class PayoutGateway(Protocol):
    name: str

    def create_account(self, instruction: PayoutInstruction) -> str:
        """Create the user's connected account with the bank token attached; return its id."""
        ...

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        """Move the amount from the platform balance to ``account_id``; return the transfer id."""
        ...

    def create_payout(self, instruction: PayoutInstruction, account_id: str) -> str:
        """Pay the amount out of ``account_id`` to its bank account; return the payout id."""
        ...
