"""Per-request observability: the X-Request-ID, one JSON access-log line, request metrics, and /metrics."""

from __future__ import annotations

import hmac
import logging
import time

import sentry_sdk
from flask import Blueprint, Flask, Response, current_app, g, request

from api.dependencies import Dependencies
from api.errors import error_response
from shared.config import Config, ConfigError
from shared.db import Database
from shared.observability import context, metrics
from shared.observability.celery import propagate_request_ids
from shared.observability.logs import configure_logging
from shared.observability.sentry import init_sentry

access_log = logging.getLogger("wallet.access")

# Probes and scrapes arrive every few seconds from every replica: logged at DEBUG so they do not drown requests.
QUIET_PATHS = frozenset({"/health", "/health/ready", "/metrics"})

metrics_blp = Blueprint("metrics", __name__)


def init_observability(app: Flask, config: Config) -> None:
    """Logs, Sentry, request hooks and /metrics. Called first in create_app so the hooks wrap everything."""
    if config.is_production and not config.metrics_token:
        raise ConfigError("METRICS_TOKEN is required when APP_ENV=production (/metrics must not be public)")
    configure_logging(config.log_level)
    init_sentry(config, "api")
    propagate_request_ids()  # payout tasks enqueued by a request log under its id
    app.extensions["wallet_metric_collectors"] = []
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_clear_request_context)
    app.register_blueprint(metrics_blp)


def init_dependencies(app: Flask, config: Config, database: Database) -> Dependencies:
    """Clients for /health/ready, and the scrape-time gauges that read the broker and the database."""
    dependencies = Dependencies(config, database, app.extensions.get("wallet_replica_db"))
    app.extensions["wallet_dependencies"] = dependencies
    add_scrape_collector(app, metrics.queue_depth_gauge(dependencies.queue_depths))
    add_scrape_collector(app, metrics.open_withdrawals_gauge(dependencies.open_withdrawals))
    return dependencies


def add_scrape_collector(app: Flask, collector: metrics.Collector) -> None:
    """Register a gauge computed at scrape time (queue depth, open withdrawals) for this app's /metrics."""
    app.extensions["wallet_metric_collectors"].append(collector)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = context.accept_request_id(request.headers.get(context.REQUEST_ID_HEADER))
    g.request_id_token = context.request_id_var.set(g.request_id)
    sentry_sdk.set_tag("request_id", g.request_id)  # a no-op unless SENTRY_DSN is set


def _user_id() -> str | None:
    account = g.get("account")
    return str(account.user_id) if account is not None else None


def _finish_request(response: Response) -> Response:
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    request_id = g.get("request_id") or context.new_request_id()
    response.headers[context.REQUEST_ID_HEADER] = request_id
    endpoint = request.url_rule.rule if request.url_rule is not None else None
    metrics.record_http_request(request.method, endpoint, response.status_code, seconds)
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    access_log.log(
        level,
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "endpoint": endpoint or metrics.UNMATCHED_ENDPOINT,
            "status": response.status_code,
            "latency_ms": round(seconds * 1000, 2),
            "request_id": request_id,
            "user_id": _user_id(),
        },
    )
    return response


def _clear_request_context(_exc: BaseException | None = None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        context.request_id_var.reset(token)


@metrics_blp.route("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text exposition. With METRICS_TOKEN set, only ``Authorization: Bearer <token>`` may read it."""
    config: Config = current_app.extensions["wallet_config"]
    if config.metrics_token:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.metrics_token.encode()):
            return error_response(
                401,
                "unauthenticated",
                "metrics need 'Authorization: Bearer <METRICS_TOKEN>'",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body = metrics.render(current_app.extensions["wallet_metric_collectors"])
    return Response(body, mimetype=None, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
