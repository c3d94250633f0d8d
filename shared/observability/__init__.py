"""Logs, metrics, error reporting and request ids, shared by the API and the worker.

Nothing here imports ``prometheus_client`` at package import time: gunicorn's master imports
:mod:`shared.observability.multiproc` before it has set ``PROMETHEUS_MULTIPROC_DIR``.
"""

from shared.observability import multiproc

# prometheus_client picks its storage when first imported, from the mere presence of the variable: an empty
# value (an unfilled .env) must not switch it on, and a set one must name a directory that exists.
multiproc.normalize_env()
