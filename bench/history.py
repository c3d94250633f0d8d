"""Section 2: GET /wallet and GET /transactions for a user with 1k and with 1M history rows.

The rows are seeded with one INSERT ... SELECT generate_series (not through the API), and the wallet's balance is
then set to their sum, so the ledger invariant holds for the seeded users too. Row ids ascend with time (a per-wallet
prefix, then the row number) so every index is appended to, not split at random: 1M rows in seconds, not a minute.
The reads walk (wallet_id, created_at, id) and never look at how ids are spread.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from bench.context import BenchContext, median_and_range, seed_bypass_users
from bench.measure import CpuMeter, measure, server_meter
from bench.stack import BenchError, Server
from shared.ledger.history import encode_cursor

SMALL_ROWS = 1_000
EMAIL_FORMATS = {"small": "bench-history-small-%d@example.com", "large": "bench-history-large-%d@example.com"}
WARMUP_SECONDS = 2
TARGET_RATIO = 1.5  # reads at 1M rows within 1.5x of 1k rows

_SEED_ROWS = sa.text(
    """
    INSERT INTO transactions (id, user_id, wallet_id, transaction_type, material, units, amount_cents, created_at)
    SELECT (substr(md5(w.id::text), 1, 8) || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
           w.user_id, w.id, 'deposit',
           CASE WHEN i % 2 = 0 THEN 'plastic' ELSE 'aluminum' END,
           1 + i % 20,
           (CASE WHEN i % 2 = 0 THEN 5 ELSE 10 END) * (1 + i % 20),
           now() - make_interval(secs => :rows - i)
    FROM wallets w JOIN users u ON u.id = w.user_id, generate_series(1, :rows) AS i
    WHERE u.email = :email
    """
)
_SET_BALANCE = sa.text(
    """
    UPDATE wallets w SET balance_cents = (SELECT coalesce(sum(t.amount_cents), 0) FROM transactions t
                                          WHERE t.wallet_id = w.id), updated_at = now()
    FROM users u WHERE u.id = w.user_id AND u.email = :email
    """
)
_MIDDLE_ROW = sa.text(
    """
    SELECT t.created_at, t.id FROM transactions t JOIN users u ON u.id = t.user_id WHERE u.email = :email
    ORDER BY t.created_at DESC, t.id DESC OFFSET :offset LIMIT 1
    """
)


def _email(size: str) -> str:
    return EMAIL_FORMATS[size].replace("%d", "0")


def seed(engine: sa.Engine, rows: dict[str, int]) -> float:
    started = time.monotonic()
    for size, count in rows.items():
        seed_bypass_users(engine, EMAIL_FORMATS[size], 1)
        with engine.begin() as conn:
            if conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
                # Skip the per-row foreign-key triggers (half the seeding time): every row's user and wallet come
                # from the join above, so there is nothing for them to catch. Needs a superuser; else just slower.
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(_SEED_ROWS, {"rows": count, "email": _email(size)})
            conn.execute(_SET_BALANCE, {"email": _email(size)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE transactions"))
    return round(time.monotonic() - started, 1)


def _middle_cursor(engine: sa.Engine, size: str, rows: int) -> str:
    with engine.connect() as conn:
        created_at, row_id = conn.execute(_MIDDLE_ROW, {"email": _email(size), "offset": rows // 2}).one()
    return encode_cursor(created_at, row_id)


def run(ctx: BenchContext, server: Server, large_rows: int) -> dict[str, Any]:
    engine = ctx.engine()
    rows = {"small": SMALL_ROWS, "large": large_rows}
    seed_seconds = seed(engine, rows)
    meter = server_meter(engine, server)
    endpoints: dict[str, dict[str, str]] = {
        "GET /wallet": {size: "/wallet" for size in rows},
        "GET /transactions?limit=50": {size: "/transactions?limit=50" for size in rows},
        "GET /transactions?limit=50&cursor=<middle>": {
            size: f"/transactions?limit=50&cursor={_middle_cursor(engine, size, count)}" for size, count in rows.items()
        },
    }
    for paths in endpoints.values():
        for size, path in paths.items():
            _get(meter, server, ctx, "warmup", size, path, WARMUP_SECONDS)

    results = []
    for name, paths in endpoints.items():
        runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": []}
        for index in range(ctx.rounds):
            order = ["small", "large"] if index % 2 == 0 else ["large", "small"]
            for size in order:
                runs[size].append(_get(meter, server, ctx, f"{name} {size}", size, paths[size], ctx.short_seconds))
        # At a fixed number of connections, mean latency is the inverse of throughput: compare round by round.
        ratios = [
            large["mean_ms"] / small["mean_ms"] for small, large in zip(runs["small"], runs["large"], strict=True)
        ]
        results.append(
            {
                "path": name,
                "small": _summary(runs["small"]),
                "large": _summary(runs["large"]),
                "latency_ratio": median_and_range(ratios),
                "met": median_and_range(ratios)["median"] <= TARGET_RATIO,
                "runs": runs,
            }
        )
    engine.dispose()
    return {
        "connections": ctx.connections,
        "small_rows": SMALL_ROWS,
        "large_rows": large_rows,
        "seed_seconds": seed_seconds,
        "target_ratio_at_most": TARGET_RATIO,
        "endpoints": results,
    }


def _get(meter: CpuMeter, server: Server, ctx: BenchContext, label: str, size: str, path: str, seconds: float) -> Any:
    result = measure(
        meter,
        label,
        server.url,
        path=path,
        seconds=seconds,
        connections=ctx.connections,
        users=1,
        email_format=EMAIL_FORMATS[size],
    )
    if result["failed"]:
        raise BenchError(f"history benchmark: {label} had failed requests: {result['errors']}")
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: median_and_range([r[key] for r in runs])
        for key in ("rps", "p50_ms", "p99_ms", "mean_ms", "server_cpu_ms", "postgres_cpu_ms")
    }
