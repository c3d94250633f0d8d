"""A gateway that pays nothing and needs no network, deterministic by bank token (the embedded default).

- ``tok_fail_<code>``: attaching the bank account is refused permanently with failure code ``<code>``;
- ``tok_flaky_<n>``: the payout fails transiently on the first ``n`` attempts, then succeeds;
- anything else succeeds.

Ids derive from the idempotency keys, so the same key always returns the same object, as with Stripe.
"""

from __future__ import annotations

import hashlib
import re
import time

from shared.payouts.gateway import PayoutInstruction, PermanentPayoutError, TransientPayoutError

FAIL_PREFIX = "tok_fail_"
FLAKY_PATTERN = re.compile(r"^tok_flaky_(\d+)$")


def _object_id(prefix: str, key: str) -> str:
    return f"{prefix}_sim_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class SimulatedGateway:
    name = "simulated"

    def __init__(self, latency_ms: int = 0) -> None:
        self._latency_s = latency_ms / 1000

    def create_account(self, instruction: PayoutInstruction) -> str:
        return _object_id("acct", f"user-{instruction.user_id}")

    def attach_bank_account(self, instruction: PayoutInstruction, account_id: str) -> str:
        if instruction.bank_token.startswith(FAIL_PREFIX):
            code = instruction.bank_token.removeprefix(FAIL_PREFIX) or "declined"
            raise PermanentPayoutError(code, f"simulated permanent failure: {code}")
        return _object_id("ba", instruction.bank_account_key)

    def find_transfer(self, instruction: PayoutInstruction, account_id: str) -> str | None:
        return None  # nothing to find: simulated ids derive from the keys, which it never forgets

    def create_transfer(self, instruction: PayoutInstruction, account_id: str) -> str:
        return _object_id("tr", instruction.transfer_key)

    def create_payout(self, instruction: PayoutInstruction, account_id: str, bank_account_id: str) -> str:
        if self._latency_s:
            time.sleep(self._latency_s)
        flaky = FLAKY_PATTERN.match(instruction.bank_token)
        if flaky and instruction.attempt <= int(flaky.group(1)):
            raise TransientPayoutError("simulated_transient", f"simulated transient failure {instruction.attempt}")
        return _object_id("po", instruction.payout_key)
