"""Idempotency keys toward the payout provider, derived from the withdrawal and its attempt generation.

Derived, never random: a worker that crashed mid-call, or a retry after a timeout, sends the very same key,
so the provider returns the first call's result instead of paying twice. An operator requeue after a
definite failure bumps the generation, which is the only way a withdrawal gets new keys.
"""

from __future__ import annotations

import uuid


def idempotency_key(withdrawal_id: uuid.UUID, generation: int, step: str) -> str:
    return f"withdrawal-{withdrawal_id}-g{generation}-{step}"
