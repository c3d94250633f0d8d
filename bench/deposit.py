"""Section 1: POST /deposit against its floor (POST /_bench/floor/deposit) in the same server and run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench.context import BenchContext, median_and_range, seed_bypass_users
from bench.measure import CpuMeter, measure, server_meter
from bench.stack import BenchError, Server
from shared.db import Database
from shared.ledger import verify

EMAIL_FORMAT = "bench-deposit-%d@example.com"
# Enough distinct wallets that round-robin traffic stays far below the default 5 deposits/s per wallet even at
# 2,000 req/s, so the rate limiter answers "allowed" (the Redis call still happens on every request).
USERS = 1000
BODY = '{"material": "aluminum", "units": 3}'
FULL_PATH = "/deposit"
FLOOR_PATH = "/_bench/floor/deposit"
WARMUP_SECONDS = 3
# Targets from the benchmark issue.
TARGET_RATIO = 0.75
TARGET_P99_MS = 50.0


def _load(meter: CpuMeter, server: Server, ctx: BenchContext, label: str, path: str, seconds: float) -> dict[str, Any]:
    return measure(
        meter,
        label,
        server.url,
        path=path,
        seconds=seconds,
        connections=ctx.connections,
        method="POST",
        body=BODY,
        users=USERS,
        email_format=EMAIL_FORMAT,
    )


def run(ctx: BenchContext, server: Server) -> dict[str, Any]:
    engine = ctx.engine()
    seed_bypass_users(engine, EMAIL_FORMAT, USERS)
    meter = server_meter(engine, server)
    for path in (FLOOR_PATH, FULL_PATH):  # fill the connection pools (database and Redis) of every worker
        _load(meter, server, ctx, "warmup", path, WARMUP_SECONDS)

    rounds = []
    for index in range(ctx.rounds):
        order = [("floor", FLOOR_PATH), ("full", FULL_PATH)]
        if index % 2:  # alternate which goes first so that drift in machine load hits both sides alike
            order.reverse()
        results = {name: _load(meter, server, ctx, name, path, ctx.seconds) for name, path in order}
        for result in results.values():
            if result["failed"]:
                raise BenchError(f"deposit benchmark: {result['label']} had failed requests: {result['errors']}")
        rounds.append(
            {
                "floor": results["floor"],
                "full": results["full"],
                "ratio": round(results["full"]["rps"] / results["floor"]["rps"], 3),
                "cpu_ratio": round(results["full"]["server_cpu_ms"] / results["floor"]["server_cpu_ms"], 3),
            }
        )

    ledger = _check_ledger(ctx)
    engine.dispose()
    ratios = [r["ratio"] for r in rounds]
    full_p99 = [r["full"]["p99_ms"] for r in rounds]
    return {
        "connections": ctx.connections,
        "users": USERS,
        "body": BODY,
        "rounds": rounds,
        "ratio": median_and_range(ratios),
        "server_cpu_ratio": median_and_range([r["cpu_ratio"] for r in rounds]),
        "full_rps": median_and_range([r["full"]["rps"] for r in rounds]),
        "floor_rps": median_and_range([r["floor"]["rps"] for r in rounds]),
        "full_p99_ms": median_and_range(full_p99),
        "floor_p99_ms": median_and_range([r["floor"]["p99_ms"] for r in rounds]),
        "targets": {
            "ratio_at_least": TARGET_RATIO,
            "ratio_met": min(ratios) >= TARGET_RATIO,
            "ratio_median_met": median_and_range(ratios)["median"] >= TARGET_RATIO,
            "full_p99_ms_at_most": TARGET_P99_MS,
            "p99_met": max(full_p99) <= TARGET_P99_MS,
            "p99_median_met": median_and_range(full_p99)["median"] <= TARGET_P99_MS,
        },
        "ledger": ledger,
    }


def _check_ledger(ctx: BenchContext) -> dict[str, Any]:
    """Every measured deposit really moved money once: the books balance after the load."""
    database = Database(ctx.database_url)
    try:
        with database.session() as session:
            mismatches = verify(session)
            count = session.execute(sa.text("SELECT count(*) FROM transactions")).scalar_one()
    finally:
        database.dispose()
    if mismatches:
        raise BenchError(f"ledger verify found {len(mismatches)} mismatches after the deposit load")
    return {"transactions": count, "verify": "clean"}
