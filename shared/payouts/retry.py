"""Backoff for transient payout errors: exponential, capped, with jitter."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, base_ms: int, max_ms: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: half of ``min(max, base * 2**(attempt-1))`` plus up to that half again.

    "Equal jitter": retries of many withdrawals failing together (a provider outage) spread out instead of
    returning in lockstep, while each still waits at least half the exponential delay.
    """
    cap_ms = min(max_ms, base_ms << max(attempt - 1, 0))
    half = cap_ms / 2
    jitter = (rng or random.Random()).uniform(0, half)
    return (half + jitter) / 1000
