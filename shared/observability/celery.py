"""Celery wiring: JSON logs, the HTTP request id carried in task headers, Sentry and the metrics endpoint.

The worker calls :func:`install` with its Celery app and config; the API calls :func:`propagate_request_ids`
so the tasks it publishes carry the request's id. Both are idempotent (Celery signals are process-global).
"""

from __future__ import annotations

import logging
from typing import Any

import sentry_sdk
from celery import Celery, signals

from shared.observability import context, metrics
from shared.observability.logs import configure_logging
from shared.observability.sentry import init_sentry

# Custom task header: Celery copies unknown message headers onto ``task.request``.
REQUEST_ID_TASK_HEADER = "request_id"

log = logging.getLogger(__name__)
_bound_tokens: dict[str, Any] = {}
_worker_config: Any = None


def _inject_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """before_task_publish: stamp the publishing request's id on the task message."""
    request_id = context.current_request_id()
    if headers is not None and request_id is not None and REQUEST_ID_TASK_HEADER not in headers:
        headers[REQUEST_ID_TASK_HEADER] = request_id


def request_id_of(task: Any) -> str | None:
    raw = getattr(task.request, REQUEST_ID_TASK_HEADER, None)
    if raw is None and isinstance(getattr(task.request, "headers", None), dict):
        raw = task.request.headers.get(REQUEST_ID_TASK_HEADER)
    return raw if isinstance(raw, str) and context.is_valid_request_id(raw) else None


def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """task_prerun: every log line of the task carries the id of the request that caused it."""
    if task is None or task_id is None:
        return
    request_id = request_id_of(task) or f"task-{task_id}"
    _bound_tokens[task_id] = context.request_id_var.set(request_id)
    sentry_sdk.set_tag("request_id", request_id)


def _unbind_task_context(task_id: str | None = None, **_: Any) -> None:
    token = _bound_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        context.request_id_var.reset(token)


def _setup_logging(**_: Any) -> None:
    # Connecting setup_logging at all stops Celery from installing its own text handlers.
    configure_logging(_worker_config.log_level if _worker_config is not None else "INFO")


def _start_worker_metrics(**_: Any) -> None:
    if _worker_config is None:
        return
    try:
        metrics.start_metrics_server(_worker_config.worker_metrics_port)
    except OSError as exc:  # a second worker on one host: keep working without an endpoint
        log.warning("worker metrics endpoint not started: %s", exc)


def propagate_request_ids() -> None:
    """Tasks published by this process carry the current request id (connect once; Celery dedupes)."""
    signals.before_task_publish.connect(_inject_request_id, weak=False, dispatch_uid="wallet-request-id")


def install(app: Celery, config: Any, component: str = "worker") -> None:
    """Wire a Celery app's processes (worker, beat, flower): logs, request ids, metrics, Sentry."""
    global _worker_config
    _worker_config = config
    propagate_request_ids()
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid="wallet-logging")
    signals.task_prerun.connect(_bind_task_context, weak=False, dispatch_uid="wallet-task-bind")
    signals.task_postrun.connect(_unbind_task_context, weak=False, dispatch_uid="wallet-task-unbind")
    signals.worker_ready.connect(_start_worker_metrics, weak=False, dispatch_uid="wallet-worker-metrics")
    init_sentry(config, component)
