"""gunicorn settings, each overridable from the environment (see README)."""

import os

from gunicorn.glogging import Logger

from shared.observability import multiproc

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threaded workers (gthread), one process per core: they keep client connections alive between requests, where
# the sync worker accepts and closes a TCP connection per request. On 2 cores, POST /deposit at 32 connections:
# sync x4 ~320-330 req/s at 2.6-2.8 ms of server CPU per request; gthread 2 x 8 ~540-710 req/s at 1.5-1.8 ms;
# 2 x 4 and 3 x 4 no better (README, Benchmarks, "Server", also for granian). Size the database pool to the
# threads (SQLALCHEMY_ENGINE_OPTIONS pool_size).
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM gunicorn stops accepting and lets in-flight requests finish for this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# Containers: /dev/shm (tmpfs) keeps worker heartbeats off a possibly slow or read-only disk.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None

# gunicorn's own messages as JSON lines too, like the application's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},  # the application installs its own JSON handler on root
    "formatters": {"json": {"()": "shared.observability.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # The application logs one JSON line per request; gunicorn's own access line only when asked for.
        "gunicorn.access": {"handlers": ["stderr"] if accesslog else [], "level": "INFO", "propagate": False},
    },
}


class AccessLogOnlyWhenAsked(Logger):
    """gunicorn builds its access line's atoms (headers, times, formatting) on every request whenever a logging
    config is given, as ours is, even with no handler to write it; skip that unless GUNICORN_ACCESSLOG asks."""

    def _compute_access_log_enabled(self):
        return bool(self.cfg.accesslog)


logger_class = AccessLogOnlyWhenAsked

# Prometheus multiprocess mode: the directory must be exported before a worker imports prometheus_client.
_metrics_dir = multiproc.ensure_dir()


def on_starting(server):
    multiproc.wipe(_metrics_dir)


def child_exit(server, worker):
    multiproc.mark_process_dead(worker.pid)


def on_exit(server):
    multiproc.remove_if_owned(_metrics_dir)
