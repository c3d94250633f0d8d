"""Tables on stdout and one JSON file per run under bench/results/."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_meta(args: argparse.Namespace) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "args": {k: v for k, v in vars(args).items()},
    }


def save(results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _range(r: dict[str, float], unit: str = "") -> str:
    return f"{_fmt(r['median'])}{unit} [{_fmt(r['min'])}-{_fmt(r['max'])}]"


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def _load_rows(results: list[dict[str, Any]], extra: list[Any] | None = None) -> list[list[Any]]:
    return [
        [
            r["label"],
            r["rps"],
            r["p50_ms"],
            r["p95_ms"],
            r["p99_ms"],
            r["requests"],
            r["failed"],
            r.get("server_cpu_ms", ""),
            r.get("postgres_cpu_ms", ""),
            *(extra or []),
        ]
        for r in results
    ]


LOAD_HEADERS = ["run", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "failed", "app cpu ms/req", "pg cpu ms/req"]


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [
        f"Recycling Wallet benchmark  commit {meta['git_commit']}  python {meta['python']}  cpus {meta['cpus']}"
        f"  load at start {meta['loadavg_at_start']}  elapsed {meta.get('elapsed_s')} s",
    ]
    sections = results["sections"]
    for name, render_section in (
        ("deposit", _render_deposit),
        ("history", _render_history),
        ("payouts", _render_payouts),
        ("firebase", _render_firebase),
    ):
        if name in sections:
            section = sections[name]
            out.append("")
            out.append(render_section(section))
            out.append(
                f"   ({section.get('elapsed_s')} s; 1-minute load average {section.get('loadavg_1m', ['?', '?'])[0]}"
                f" -> {section.get('loadavg_1m', ['?', '?'])[1]})"
            )
    return "\n".join(out)


def _server(section: dict[str, Any]) -> str:
    server = section.get("server", {})
    return ", ".join(f"{k}={v}" for k, v in server.items())


def _render_deposit(s: dict[str, Any]) -> str:
    rows = []
    for index, r in enumerate(s["rounds"], 1):
        for side in ("floor", "full"):
            res = dict(r[side], label=f"round {index} {side}")
            rows += _load_rows([res])
        rows[-1].append(f"full/floor {r['ratio']:.2f}")
    t = s["targets"]
    return "\n".join(
        [
            f"1. POST /deposit vs floor  ({s['connections']} connections, {s['users']} users, server: {_server(s)})",
            _table([*LOAD_HEADERS, ""], [row + [""] * (len(LOAD_HEADERS) + 1 - len(row)) for row in rows]),
            f"   full/floor throughput: {_range(s['ratio'])}  (target >= {t['ratio_at_least']}: "
            f"median {_verdict(t['ratio_median_met'])}, every round {_verdict(t['ratio_met'])})",
            f"   full/floor app CPU per request: {_range(s['server_cpu_ratio'])}",
            f"   full p99: {_range(s['full_p99_ms'], ' ms')}  floor p99: {_range(s['floor_p99_ms'], ' ms')}  "
            f"(target <= {t['full_p99_ms_at_most']} ms: median {_verdict(t['p99_median_met'])}, "
            f"every round {_verdict(t['p99_met'])})",
            f"   ledger after the load: {s['ledger']['transactions']:,} transactions, verify {s['ledger']['verify']}",
        ]
    )


def _short(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)


def _render_history(s: dict[str, Any]) -> str:
    few, many = _short(s["small_rows"]), _short(s["large_rows"])
    rows = []
    for endpoint in s["endpoints"]:
        small, large = endpoint["small"], endpoint["large"]
        rows.append(
            [
                endpoint["path"],
                small["rps"]["median"],
                large["rps"]["median"],
                small["p99_ms"]["median"],
                large["p99_ms"]["median"],
                _range(endpoint["latency_ratio"]),
                _verdict(endpoint["met"]),
            ]
        )
    return "\n".join(
        [
            f"2. History reads, {s['small_rows']:,} vs {s['large_rows']:,} rows ({s['connections']} connections, "
            f"seeded in {s['seed_seconds']} s, server: {_server(s)})",
            _table(
                [
                    "endpoint",
                    f"{few} req/s",
                    f"{many} req/s",
                    f"{few} p99 ms",
                    f"{many} p99 ms",
                    f"{many}/{few} mean latency",
                    f"<= {s['target_ratio_at_most']}x",
                ],
                rows,
            ),
        ]
    )


def _render_firebase(s: dict[str, Any]) -> str:
    micro = s["verify_id_token"]
    rows = _load_rows([r[side] for r in s["rounds"] for side in ("bypass", "token")])
    fetches = s["cert_fetches"]
    return "\n".join(
        [
            f"4. Firebase ID token verification (RS256 test key, public keys cached; server: {_server(s)})",
            f"   verify_id_token in-process: {_range(micro['us_per_call'], ' us')} per call "
            f"({micro['calls']:,} calls); floor, bypass header: {micro['bypass_us_per_call']:.2f} us per call",
            _table(LOAD_HEADERS, rows),
            f"   GET /wallet with a token vs the bypass header: throughput {_range(s['ratio'])}, "
            f"added server CPU per request {_range(s['added_server_cpu_ms_per_request'], ' ms')}",
            f"   public-key fetches: {fetches['micro']} in-process; by the server's {fetches['server_workers']} "
            f"workers {fetches['server']} in all ({fetches['during_measured_runs']} of them during the measured runs;"
            f" at most one per process) -> no network per request: {'yes' if s['no_network_per_request'] else 'NO'}",
        ]
    )


def _render_payouts(s: dict[str, Any]) -> str:
    if s.get("skipped"):
        return f"3. Payout pipeline: SKIPPED - {s['skipped']}"
    rows = [
        [
            f"{r['latency_ms']} ms",
            r["count"],
            r["seconds"],
            r["payouts_per_s"],
            r["floor_per_s"],
            r["ratio"],
            r["target_per_s"],
            _verdict(r["met"]),
        ]
        for r in s["runs"]
    ]
    return "\n".join(
        [
            f"3. Payout pipeline (worker: {s['worker']})",
            _table(
                ["gateway latency", "withdrawals", "seconds", "payouts/s", "floor tasks/s", "ratio", "target", ""],
                rows,
            ),
            "   floor: the same worker and pool running no-op tasks that only wait the same latency",
            f"   ledger after the payouts: verify {s['ledger']['verify']}",
        ]
    )
