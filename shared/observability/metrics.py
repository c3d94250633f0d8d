"""Every Prometheus metric of the service, and the small functions the rest of the code calls to record.

Callers never touch a metric object: they call ``record_*``/``set_*`` so names and labels live here only.
Counters are per process and merged at scrape time when ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn,
Celery prefork); gauges that describe shared state (queue depth, open withdrawals) are computed at scrape
time by collectors, from the broker and the database, so every pod reports the same value: aggregate them
with ``max()``, not ``sum()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from shared.observability import multiproc

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latency buckets in seconds: the API answers in milliseconds; anything past 2.5 s is an incident.
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Provider calls are slower and bounded by the gateway timeout.
PAYOUT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ENDPOINT = "<unmatched>"  # 404s: one label value, whatever path was asked for

HTTP_REQUESTS = Counter(
    "wallet_http_requests_total", "HTTP requests answered, by route and status", ["method", "endpoint", "status"]
)
HTTP_LATENCY = Histogram(
    "wallet_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["method", "endpoint"],
    buckets=HTTP_LATENCY_BUCKETS,
)
DEPOSITS = Counter("wallet_deposits_total", "Deposits recorded, by material", ["material"])
DEPOSITED_CENTS = Counter("wallet_deposited_cents_total", "Cents credited by deposits, by material", ["material"])
WITHDRAWALS = Counter(
    "wallet_withdrawals_total", "Withdrawals entering a status (pending when requested), by status", ["status"]
)
PAYOUT_ATTEMPTS = Counter(
    "wallet_payout_attempts_total", "Calls to the payout provider, by outcome (paid, retry, failed)", ["outcome"]
)
PAYOUT_FAILURES = Counter("wallet_payout_failures_total", "Failed payout attempts, by failure code", ["code"])
PAYOUT_LATENCY = Histogram(
    "wallet_payout_duration_seconds", "Time of one payout attempt at the provider", buckets=PAYOUT_LATENCY_BUCKETS
)
RATE_LIMITED = Counter("wallet_rate_limited_total", "Requests refused with 429, by endpoint", ["endpoint"])
# livemax: 1 while any live process is limiting in memory because Redis is unreachable.
LIMITER_FALLBACK = Gauge(
    "wallet_rate_limiter_fallback_active",
    "1 while the rate limiter runs in memory because its Redis is unreachable",
    multiprocess_mode="livemax",
)


# -- recording: what the rest of the code calls -----------------------------------------------------------


def record_http_request(method: str, endpoint: str | None, status: int, seconds: float) -> None:
    endpoint = endpoint or UNMATCHED_ENDPOINT
    HTTP_REQUESTS.labels(method, endpoint, str(status)).inc()
    HTTP_LATENCY.labels(method, endpoint).observe(seconds)


def record_deposit(material: str, amount_cents: int) -> None:
    DEPOSITS.labels(material).inc()
    DEPOSITED_CENTS.labels(material).inc(amount_cents)


def record_withdrawal_status(status: str) -> None:
    WITHDRAWALS.labels(status).inc()


def record_payout_attempt(outcome: str, seconds: float, failure_code: str | None = None) -> None:
    """One provider call: ``outcome`` is paid, retry (transient) or failed (permanent or exhausted)."""
    PAYOUT_ATTEMPTS.labels(outcome).inc()
    PAYOUT_LATENCY.observe(seconds)
    if failure_code is not None:
        PAYOUT_FAILURES.labels(failure_code).inc()


def record_rate_limited(endpoint: str) -> None:
    RATE_LIMITED.labels(endpoint).inc()


def set_rate_limiter_fallback(active: bool) -> None:
    LIMITER_FALLBACK.set(1 if active else 0)


# -- scrape-time collectors: shared state, read when Prometheus asks ---------------------------------------


class CallbackGauge(Collector):
    """A gauge family whose samples come from ``read()`` at scrape time; a failing read yields nothing."""

    def __init__(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._name, self._documentation, self._label, self._read = name, documentation, label, read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            samples = self._read()
        except Exception as exc:  # a scrape must never fail because one dependency is down
            log.warning("metric %s not collected: %s", self._name, type(exc).__name__)
            return
        family = GaugeMetricFamily(self._name, self._documentation, labels=[self._label])
        for label_value, value in sorted(samples.items()):
            family.add_metric([label_value], value)
        yield family


def queue_depth_gauge(read: Callable[[], Mapping[str, float]]) -> CallbackGauge:
    return CallbackGauge("wallet_queue_depth", "Messages waiting in the broker, by queue", "queue", read)


def open_withdrawals_gauge(read: Callable[[], Mapping[str, float]]) -> CallbackGauge:
    return CallbackGauge(
        "wallet_withdrawals_open", "Withdrawals not yet final (pending, processing, failed), by status", "status", read
    )


# -- exposition ---------------------------------------------------------------------------------------------


def _process_registry() -> Any:
    """This process's metrics, or every worker process's merged when running in multiprocess mode."""
    if not multiproc.is_enabled():
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(collectors: Iterable[Collector] = ()) -> bytes:
    """The text exposition of the process metrics plus ``collectors`` (read now)."""
    output = generate_latest(_process_registry())
    scrape_registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        scrape_registry.register(collector)
    return output + generate_latest(scrape_registry)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> bool:
    """Serve this process's metrics on ``port`` (the worker has no web server of its own). 0 disables it."""
    if port <= 0:
        return False
    start_http_server(port, addr=addr, registry=_process_registry())
    log.info("metrics served on :%d/metrics", port)
    return True
