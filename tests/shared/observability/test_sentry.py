"""SENTRY_DSN set: errors reach Sentry (a local fake ingest server) without secrets; unset: nothing starts."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from shared.config import Config
from shared.observability.sentry import init_sentry
from tests.live_server import PROJECT_ROOT

SECRETS = ("tok_bank_" + "9f8e7d6c", "eyJ" + "idtoken0123")


class _Ingest(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        _Ingest.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[tuple[str, list[bytes]]]:
    _Ingest.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", _Ingest.received
    server.shutdown()
    server.server_close()


def test_unset_dsn_initialises_nothing() -> None:
    assert init_sentry(Config.from_env({}), "api") is False
    assert not sentry_sdk.is_initialized()


def test_errors_reach_sentry_without_tokens_or_bodies(ingest: tuple[str, list[bytes]]) -> None:
    dsn, received = ingest
    result = subprocess.run(
        [sys.executable, "-m", "tests.shared.observability.sentry_probe", dsn],
        env={**os.environ, "PROBE_BANK_TOKEN": SECRETS[0], "PROBE_ID_TOKEN": SECRETS[1]},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 500, "initialized": True}
    envelopes = b"\n".join(received).decode(errors="replace")
    events = [json.loads(line) for line in envelopes.splitlines() if line.startswith("{") and '"exception"' in line]
    assert events, f"no error event reached Sentry: {envelopes[:500]}"
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["environment"] == "test"
    assert event["tags"]["component"] == "api"
    assert event["tags"]["request_id"] == "sentry-req-1"
    for secret in SECRETS:
        assert secret not in envelopes
