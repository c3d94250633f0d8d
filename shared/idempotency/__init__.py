"""Idempotency keys: a retried POST gets its first response back instead of moving money twice."""

from shared.idempotency.keys import (
    KEY_TTL,
    LOCK_TIMEOUT,
    Claim,
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    StoredResponse,
    claim,
    complete,
    fingerprint,
    record,
    release,
)

__all__ = [
    "KEY_TTL",
    "LOCK_TIMEOUT",
    "Claim",
    "IdempotencyKeyReused",
    "IdempotentRequestInProgress",
    "StoredResponse",
    "claim",
    "complete",
    "fingerprint",
    "record",
    "release",
]
