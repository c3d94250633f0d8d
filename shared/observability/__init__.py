"""Logs, metrics, error reporting and request ids, shared by the API and the worker.

Nothing here imports ``prometheus_client`` at package import time: gunicorn's master imports
:mod:`shared.observability.multiproc` before it has set ``PROMETHEUS_MULTIPROC_DIR``.
"""
