"""python -m bench: run every section against the real stack and print/save the results."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import report
from bench.context import BenchContext
from bench.loadgen import ensure_wrk
from bench.stack import BenchError, bench_database, start_gunicorn

SECTIONS = ("deposit", "history", "payouts", "firebase")
ADMIN_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
# Own Redis DB numbers, so the run never touches anyone else's keys (override for your machine).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/9")
# The pool .env.example and compose use (pool_size >= gunicorn's 8 threads per process); a run may override it.
ENGINE_OPTIONS = '{"pool_size": 8, "max_overflow": 12, "pool_pre_ping": true}'


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--seconds", type=float, default=10, help="length of one measured wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="floor/full pairs per comparison (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--history-rows", type=int, default=1_000_000, help="rows for the large history user")
    parser.add_argument("--payouts", type=int, default=2000, help="withdrawals per payout run (default 2000)")
    parser.add_argument("--payout-workers", type=int, default=1, help="Celery worker processes (default 1)")
    parser.add_argument("--quick", action="store_true", help="short runs to check the harness (numbers are rough)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.history_rows, args.payouts = 3, 1, 100_000, 300
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def api_env(database_url: str, redis_url: str, broker_url: str) -> dict[str, str]:
    """The API server's environment: production-like, plus the bypass header and the floor endpoint."""
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATE_LIMIT_STORAGE_URL": redis_url,  # else the limiter takes REDIS_URL's server on DB 1
        "CELERY_BROKER_URL": broker_url,
        "AUTH_DEV_BYPASS": "true",
        "BENCH_FLOOR": "true",
        "FIREBASE_PROJECT_ID": "bench-project",
        "SQLALCHEMY_ENGINE_OPTIONS": ENGINE_OPTIONS,
    }
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS", "SQLALCHEMY_ENGINE_OPTIONS"):
        if name in os.environ:  # let a run try other server settings: GUNICORN_WORKERS=2 make bench
            env[name] = os.environ[name]
    return env


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    try:
        ensure_wrk()
        results = _run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    print(report.render(results))
    path = report.save(results)
    print(f"\nresults saved to {path}")
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": report.machine_meta(args), "sections": {}}
    with bench_database(ADMIN_DATABASE_URL) as database_url:
        ctx = BenchContext(
            database_url=database_url,
            redis_url=BENCH_REDIS_URL,
            broker_url=BENCH_BROKER_URL,
            seconds=args.seconds,
            rounds=args.rounds,
            connections=args.connections,
        )
        sections: dict[str, Callable[[], dict[str, Any]]] = {
            "deposit": lambda: _with_api(ctx, _deposit),
            "history": lambda: _with_api(ctx, lambda c, s: _history(c, s, args.history_rows)),
            "firebase": lambda: _firebase(ctx),
            "payouts": lambda: _payouts(ctx, args.payouts, args.payout_workers),
        }
        for name in SECTIONS:
            if name in args.only:
                print(f"bench: {name} ...", file=sys.stderr, flush=True)
                section_started = time.monotonic()
                load_before = round(os.getloadavg()[0], 2)
                results["sections"][name] = sections[name]()
                results["sections"][name]["elapsed_s"] = round(time.monotonic() - section_started, 1)
                # A neighbour's load shows up here: numbers from a busy machine are read with that in mind.
                results["sections"][name]["loadavg_1m"] = [load_before, round(os.getloadavg()[0], 2)]
    return results


def _with_api(ctx: BenchContext, section: Callable[[BenchContext, Any], dict[str, Any]]) -> dict[str, Any]:
    server = start_gunicorn(api_env(ctx.database_url, ctx.redis_url, ctx.broker_url))
    try:
        result = section(ctx, server)
        result["server"] = {"kind": "gunicorn", **server.settings}
        return result
    finally:
        server.stop()


def _deposit(ctx: BenchContext, server: Any) -> dict[str, Any]:
    from bench import deposit

    return deposit.run(ctx, server)


def _history(ctx: BenchContext, server: Any, rows: int) -> dict[str, Any]:
    from bench import history

    return history.run(ctx, server, rows)


def _firebase(ctx: BenchContext) -> dict[str, Any]:
    from bench import firebase

    return firebase.run(ctx, api_env(ctx.database_url, ctx.redis_url, ctx.broker_url))


def _payouts(ctx: BenchContext, count: int, processes: int) -> dict[str, Any]:
    from bench import payouts

    return payouts.run(ctx, count, processes)


if __name__ == "__main__":
    sys.exit(main())
