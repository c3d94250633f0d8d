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


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


class CpuMeter:
    """CPU seconds used so far by a server's process tree and by the database's backends."""

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

    def sample(self) -> tuple[float, float, list[int]]:
        backends = self._backend_pids()
        return _cpu_seconds(self._server_pids), _cpu_seconds(backends), backends

    def per_request_ms(self, before: tuple[float, float, list[int]], requests: int) -> dict[str, float]:
        server_after = _cpu_seconds(self._server_pids)
        # The same backends as before (pooled connections persist), so exited ones do not skew the difference.
        backends_after = _cpu_seconds(before[2])
        per = 1000 / max(requests, 1)
        return {
            "server_cpu_ms": round((server_after - before[0]) * per, 3),
            "postgres_cpu_ms": round((backends_after - before[1]) * per, 3),
        }


def server_meter(engine: sa.Engine, server: Server) -> CpuMeter:
    pids = [server.process.popen.pid, *server.process.children()]
    return CpuMeter(engine, pids)


def measure(meter: CpuMeter, label: str, url: str, **wrk_args: Any) -> dict[str, Any]:
    before = meter.sample()
    result = run_wrk(label, url, **wrk_args)
    return result.as_dict() | meter.per_request_ms(before, result.requests)
