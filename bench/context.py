"""What every benchmark section gets: the run's settings, its database, and small SQL helpers."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass
class BenchContext:
    database_url: str
    redis_url: str  # rate limiting (its own DB number)
    broker_url: str  # Celery broker (another DB number)
    seconds: float  # one measured wrk run
    rounds: int  # floor/full pairs, alternating which goes first
    connections: int

    @property
    def short_seconds(self) -> float:
        """Runs of the read and token sections: half as long, so the whole benchmark stays under 10 minutes."""
        return max(2.0, self.seconds / 2)

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.database_url, pool_size=2, max_overflow=0)


def seed_bypass_users(engine: sa.Engine, email_format: str, count: int) -> None:
    """Users and empty wallets for ``count`` development-bypass emails, in two INSERT ... SELECT statements."""
    like = email_format.replace("%d", "%")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (id, firebase_uid, email, created_at, updated_at) "
                "SELECT gen_random_uuid(), 'dev-bypass:' || e, e, now(), now() "
                "FROM (SELECT replace(:fmt, '%d', i::text) AS e FROM generate_series(0, :n - 1) AS i) AS emails "
                "ON CONFLICT (firebase_uid) DO NOTHING"
            ),
            {"fmt": email_format, "n": count},
        )
        conn.execute(
            sa.text(
                "INSERT INTO wallets (id, user_id, balance_cents, created_at, updated_at) "
                "SELECT gen_random_uuid(), u.id, 0, now(), now() FROM users u WHERE u.email LIKE :like "
                "ON CONFLICT (user_id) DO NOTHING"
            ),
            {"like": like},
        )


def median_and_range(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }
