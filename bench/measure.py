"""One measured load: wrk's numbers plus the CPU the server and its PostgreSQL backends spent per request.

CPU per request is the steadier figure on a shared machine: throughput falls when a neighbour takes a core,
CPU time per request mostly does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.loadgen import run_wrk
from bench.stack import Server

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # exited
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime, all threads


class CpuMeter:
    """CPU seconds used by a server's process tree and by the database's backends, per pid."""

    def __init__(self, engine: sa.Engine, server_pids: list[int]) -> None:
        self._engine = engine
        self._server_pids = server_pids

    def _backend_pids(self) -> list[int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [int(pid) for (pid,) in rows]

    def sample(self) -> tuple[dict[int, float], dict[int, float]]:
        def read(pids: list[int]) -> dict[int, float]:
            return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}

        return read(self._server_pids), read(self._backend_pids())

    def per_request_ms(self, before: tuple[dict[int, float], dict[int, float]], requests: int) -> dict[str, float]:
        after = self.sample()
        per = 1000 / max(requests, 1)
        # A pid seen only after the run counts whole; one that exited during the run takes its CPU with it, so
        # the PostgreSQL figure is a lower bound when a pool churns connections.
        server, backends = (
            sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items()) for then, now in zip(before, after, strict=True)
        )
        return {"server_cpu_ms": round(server * per, 3), "postgres_cpu_ms": round(backends * per, 3)}


def server_meter(engine: sa.Engine, server: Server) -> CpuMeter:
    pids = [server.process.popen.pid, *server.process.children()]
    return CpuMeter(engine, pids)


def measure(meter: CpuMeter, label: str, url: str, **wrk_args: Any) -> dict[str, Any]:
    before = meter.sample()
    result = run_wrk(label, url, **wrk_args)
    return result.as_dict() | meter.per_request_ms(before, result.requests)
