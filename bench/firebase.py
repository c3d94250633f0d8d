"""Section 4: Firebase ID token verification with the public keys cached (no network per request).

A test RSA key signs RS256 ID tokens shaped like Firebase's; a local HTTP server plays Google's key endpoint
(``Cache-Control: max-age``, as Google sends) and counts how often it is asked. Two measurements:
firebase-admin's ``verify_id_token`` in this process (through ``api.auth.FirebaseTokenVerifier``), and
``GET /wallet`` over HTTP with a Bearer token against the same request with the bypass header (the floor).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bench.context import BenchContext, median_and_range, seed_bypass_users
from bench.measure import CpuMeter, measure, server_meter
from bench.stack import BenchError, Server, free_port, start_gunicorn

PROJECT_ID = "bench-project"
KEY_ID = "bench-key-1"
USERS = 200
BYPASS_EMAIL_FORMAT = "bench-firebase-%d@example.com"
MICRO_CALLS = 1000
MICRO_BATCHES = 3
WARMUP_SECONDS = 3
KEY_MAX_AGE_S = 3600  # Google sends a max-age of a few hours; the verifier caches for that long


class _KeyServer:
    """Serves {kid: certificate PEM} like Google's endpoint and counts the requests."""

    def __init__(self, certificate_pem: str) -> None:
        body = json.dumps({KEY_ID: certificate_pem}).encode()
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={KEY_MAX_AGE_S}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/robot/v1/metadata/x509/securetoken"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _test_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _id_token(key: rsa.RSAPrivateKey, index: int) -> str:
    now = int(time.time())
    uid = f"bench-firebase-uid-{index}"
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT_ID}",
        "aud": PROJECT_ID,
        "auth_time": now - 60,
        "user_id": uid,
        "sub": uid,
        "iat": now - 60,
        "exp": now + 3600,
        "email": f"{uid}@example.com",
        "email_verified": True,
        "firebase": {"identities": {"email": [f"{uid}@example.com"]}, "sign_in_provider": "google.com"},
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})


def _micro(cert_url: str, tokens: list[str]) -> dict[str, Any]:
    """verify_id_token per call in this process, keys cached after the first call."""
    from firebase_admin import _token_gen

    from api.auth import FirebaseTokenVerifier, _bypass_identity
    from shared.config import Config

    _token_gen.ID_TOKEN_CERT_URI = cert_url
    verifier = FirebaseTokenVerifier(Config.from_env({}, firebase_project_id=PROJECT_ID))
    verifier.verify(tokens[0])  # fetches and caches the keys
    per_call = []
    for _ in range(MICRO_BATCHES):
        started = time.perf_counter()
        for i in range(MICRO_CALLS):
            verifier.verify(tokens[i % len(tokens)])
        per_call.append((time.perf_counter() - started) / MICRO_CALLS * 1e6)
    started = time.perf_counter()
    for i in range(MICRO_CALLS):
        _bypass_identity(BYPASS_EMAIL_FORMAT % (i % USERS))
    bypass_us = (time.perf_counter() - started) / MICRO_CALLS * 1e6
    return {
        "calls": MICRO_CALLS * MICRO_BATCHES,
        "us_per_call": median_and_range(per_call),
        "bypass_us_per_call": round(bypass_us, 2),
    }


def run(ctx: BenchContext, api_env: dict[str, str]) -> dict[str, Any]:
    key, certificate_pem = _test_key()
    keys = _KeyServer(certificate_pem)
    tokens = [_id_token(key, i) for i in range(USERS)]
    try:
        micro = _micro(keys.url, tokens)
        micro_fetches = keys.fetches
        with tempfile.TemporaryDirectory() as tmp:
            tokens_file = Path(tmp) / "tokens.txt"
            tokens_file.write_text("\n".join(tokens) + "\n")
            env = dict(api_env, FIREBASE_PROJECT_ID=PROJECT_ID, BENCH_FIREBASE_CERT_URL=keys.url)
            server = start_gunicorn(env, app="bench.firebase_wsgi:app", name="gunicorn-firebase")
            try:
                engine = ctx.engine()
                seed_bypass_users(engine, BYPASS_EMAIL_FORMAT, USERS)
                meter = server_meter(engine, server)
                rounds, fetches_before_rounds = _rounds(ctx, server, meter, tokens_file, keys)
                engine.dispose()
            finally:
                server.stop()
        workers = int(server.settings.get("workers", "0"))
    finally:
        keys.close()
    ratios = [r["token"]["rps"] / r["bypass"]["rps"] for r in rounds]
    added = [r["token"]["server_cpu_ms"] - r["bypass"]["server_cpu_ms"] for r in rounds]
    server_fetches = keys.fetches - micro_fetches
    measured_fetches = keys.fetches - fetches_before_rounds
    return {
        "verify_id_token": micro,
        "rounds": rounds,
        "ratio": median_and_range(ratios),
        "added_server_cpu_ms_per_request": median_and_range(added),
        "cert_fetches": {
            "micro": micro_fetches,
            "server": server_fetches,
            "during_measured_runs": measured_fetches,
            "server_workers": workers,
        },
        # One fetch per process for the whole run (api.firebase_certs: one per max-age, however many threads ask
        # at once). A worker fetches on its first token, which may come only in a measured run: the warmup's
        # connections can all land on the other worker.
        "no_network_per_request": server_fetches <= workers and micro_fetches <= 1,
        "server": {"kind": "gunicorn", **server.settings},
        "median_token_p50_ms": statistics.median(r["token"]["p50_ms"] for r in rounds),
    }


def _rounds(
    ctx: BenchContext, server: Server, meter: CpuMeter, tokens_file: Path, keys: _KeyServer
) -> tuple[list[dict[str, Any]], int]:
    def load(label: str, seconds: float, with_token: bool) -> dict[str, Any]:
        result = measure(
            meter,
            label,
            server.url,
            path="/wallet",
            seconds=seconds,
            connections=ctx.connections,
            users=USERS,
            email_format=BYPASS_EMAIL_FORMAT,
            tokens_file=tokens_file if with_token else None,
        )
        if result["failed"]:
            raise BenchError(f"firebase benchmark: {label} had failed requests: {result['errors']}")
        return result

    load("warmup", WARMUP_SECONDS, True)  # creates the token users' wallets and caches the keys per worker
    load("warmup", WARMUP_SECONDS, False)
    fetches_before = keys.fetches
    rounds = []
    for index in range(ctx.rounds):
        order = [("bypass", False), ("token", True)]
        if index % 2:
            order.reverse()
        results = {name: load(f"GET /wallet {name}", ctx.short_seconds, with_token) for name, with_token in order}
        rounds.append(results)
    return rounds, fetches_before
