"""The payout gateway protocol: three idempotent steps, each keyed by the caller.

A payout through Stripe Connect is: create the user's connected account (first withdrawal only), attach the
withdrawal's bank token to it as an external account, transfer the amount from the platform to that account,
then pay it out from that account to that bank account. The worker records each result before the next step
(recovery points), so no step is repeated once it is known to have happened.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

# The provider saw an earlier call with this idempotency key but different parameters. That earlier call
# happened, and may have moved money: its outcome is unknown, not a refusal (see shared.ledger.payouts).
IDEMPOTENCY_CONFLICT = "idempotency_conflict"


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
    bank_account_key: str
    transfer_key: str
    payout_key: str

    @property
    def metadata(self) -> dict[str, str]:
        """Sent with transfers and payouts: lets webhooks find the withdrawal, and people read Stripe."""
        return {"withdrawal_id": str(self.withdrawal_id), "attempt_generation": str(self.generation)}


class PayoutGateway(Protocol):
    name: str

    def create_account(self, instruction: PayoutInstruction) -> str:
        """Create the user's connected account; return its id."""
        ...

    def attach_bank_account(self, instruction: PayoutInstruction, account_id: str) -> str:
        """Attach the withdrawal's bank token to ``account_id``; return the bank account id."""
        ...

    def find_transfer(self, instruction: PayoutInstruction, account_id: str) -> str | None:
        """The transfer an earlier attempt already made for this withdrawal, if any (not by idempotency key:
        the provider forgets keys after 24 hours)."""
        ...

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        """Move the amount from the platform balance to ``account_id``; return the transfer id."""
        ...

    def create_payout(self, instruction: PayoutInstruction, account_id: str, bank_account_id: str) -> str:
        """Pay the amount out of ``account_id`` to ``bank_account_id``; return the payout id."""
        ...
