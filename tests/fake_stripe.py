"""A local fake of the Stripe API for tests: the real ``stripe`` library talks to it over HTTP.

It speaks the shapes our gateway uses (accounts, transfers, payouts), Stripe's error bodies, and Stripe's
idempotency: a request whose ``Idempotency-Key`` was seen before with the same parameters gets the stored
response again (success or 4xx) with ``Idempotent-Replayed: true``; different parameters get a 400
``idempotency_error``; a key still in flight gets a 409. 429 and 5xx are not stored, as when Stripe answers
``Stripe-Should-Retry: true``. Every request is recorded, and created objects are counted.

Behaviour by bank token (like the simulated gateway): ``tok_fail_<code>`` makes attaching the bank account
fail with 400 ``<code>``; ``tok_flaky_<n>`` makes the first ``n`` payout requests to that bank account, per
idempotency key, answer 500.
Tests can also script the next responses of a path, or delay every request of a path. ``GET /v1/transfers``
lists transfers by ``transfer_group``; ``forget_idempotency_keys()`` does what Stripe does after 24 hours.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_fake_stripe"
FLAKY = re.compile(r"^tok_flaky_(\d+)$")
EXTERNAL_ACCOUNTS = re.compile(r"^/v1/accounts/(acct_[^/]+)/external_accounts$")
BANK_ACCOUNTS = "/v1/accounts/*/external_accounts"  # how requests to any account's external accounts are filed
PREFIX = {"/v1/accounts": "acct", BANK_ACCOUNTS: "ba", "/v1/transfers": "tr", "/v1/payouts": "po"}
OBJECT = {
    "/v1/accounts": "account",
    BANK_ACCOUNTS: "bank_account",
    "/v1/transfers": "transfer",
    "/v1/payouts": "payout",
}


@dataclass
class Scripted:
    """One canned answer: an HTTP status with a Stripe error, and/or a delay before answering."""

    status: int = 200
    error_type: str = "api_error"
    code: str | None = None
    message: str = "scripted error"
    delay_s: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    idempotency_key: str | None
    stripe_account: str | None
    params: dict[str, str]
    status: int = 0
    replayed: bool = False


@dataclass
class _State:
    requests: list[Recorded] = field(default_factory=list)
    created: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    stored: dict[tuple[str | None, str], tuple[str, int, bytes]] = field(default_factory=dict)
    in_flight: set[tuple[str | None, str]] = field(default_factory=set)
    scripts: dict[str, deque[Scripted]] = field(default_factory=lambda: defaultdict(deque))
    delays: dict[str, float] = field(default_factory=dict)
    flaky_seen: Counter[str] = field(default_factory=Counter)
    bank_tokens: dict[str, str] = field(default_factory=dict)


class FakeStripe:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._state = _State()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    # -- test controls ---------------------------------------------------------------------------------------

    def script(self, path: str, *answers: Scripted) -> None:
        with self._lock:
            self._state.scripts[path].extend(answers)

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self._state.delays[path] = seconds

    def forget_idempotency_keys(self) -> None:
        """What Stripe does 24 hours after a key's first use: the same key now creates a new object."""
        with self._lock:
            self._state.stored.clear()

    def wait_for_request(self, path: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while sum(r.path == path for r in self._state.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fewer than {count} request(s) to {path} within {timeout}s")
                self._arrived.wait(remaining)

    # -- what happened ---------------------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._state.requests if path is None or r.path == path]

    def created(self, path: str) -> dict[str, dict[str, Any]]:
        """Objects actually created (replays excluded), by id."""
        with self._lock:
            return dict(self._state.created[path])

    def payouts_by_withdrawal(self) -> Counter[str]:
        return Counter(p["metadata"].get("withdrawal_id", "") for p in self.created("/v1/payouts").values())

    # -- request handling ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        path, _, query = path.partition("?")
        params = dict(parse_qsl(query if method == "GET" else body.decode(), keep_blank_values=True))
        external = EXTERNAL_ACCOUNTS.match(path)
        if external:
            path, params = BANK_ACCOUNTS, params | {"account": external.group(1)}
        key = headers.get("idempotency-key")
        account = headers.get("stripe-account")
        record = Recorded(method, path, key, account, params)
        with self._lock:
            self._state.requests.append(record)
            self._arrived.notify_all()
            scripted = self._state.scripts[path].popleft() if self._state.scripts[path] else None
            delay = self._state.delays.get(path, 0.0) + (scripted.delay_s if scripted else 0.0)
        if delay:
            time.sleep(delay)
        status, extra, payload = self._answer(method, path, headers, params, key, account, scripted, record)
        record.status = status
        return status, extra, payload

    def _answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        params: dict[str, str],
        key: str | None,
        account: str | None,
        scripted: Scripted | None,
        record: Recorded,
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", None, "Invalid API Key provided")
        if method == "GET" and path == "/v1/transfers":
            return 200, {}, self._list_transfers(params)
        if method != "POST" or path not in PREFIX:
            return _error(404, "invalid_request_error", "resource_missing", f"Unrecognized request URL ({path})")
        fingerprint = hashlib.sha256(json.dumps([path, sorted(params.items())]).encode()).hexdigest()
        slot = (account, key) if key else None
        with self._lock:
            if slot is not None and slot in self._state.stored:
                stored_fingerprint, status, payload = self._state.stored[slot]
                if stored_fingerprint != fingerprint:
                    return _error(
                        400,
                        "idempotency_error",
                        None,
                        "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with.",
                    )
                record.replayed = True
                return status, {"Idempotent-Replayed": "true"}, payload
            if slot is not None and slot in self._state.in_flight:
                return _error(
                    409,
                    "invalid_request_error",
                    "idempotency_key_in_use",
                    "There is currently another in-progress request using this Stripe-Idempotency-Key",
                )
            if slot is not None:
                self._state.in_flight.add(slot)
        try:
            status, extra, payload = self._execute(path, params, key, account, scripted)
            with self._lock:
                # Like Stripe: results of requests that executed are kept; a conflict (409), a rate limit
                # (429) or a 5xx that asks for a retry is not.
                if slot is not None and status < 500 and status not in (409, 429):
                    self._state.stored[slot] = (fingerprint, status, payload)
            return status, extra, payload
        finally:
            with self._lock:
                if slot is not None:
                    self._state.in_flight.discard(slot)

    def _list_transfers(self, params: dict[str, str]) -> bytes:
        """GET /v1/transfers, filtered by ``transfer_group`` like Stripe's list (newest first, one page)."""
        group = params.get("transfer_group")
        with self._lock:
            found = [t for t in self._state.created["/v1/transfers"].values() if group in (None, t["transfer_group"])]
        data = list(reversed(found))[: int(params.get("limit", "10"))]
        return json.dumps({"object": "list", "url": "/v1/transfers", "has_more": False, "data": data}).encode()

    def edit_transfer(self, transfer_id: str, **changes: Any) -> None:
        """Change a created transfer as a test needs (e.g. a destination we would not send today)."""
        with self._lock:
            self._state.created["/v1/transfers"][transfer_id].update(changes)

    def reverse_transfer(self, transfer_id: str) -> None:
        """As if someone reversed the transfer in the Stripe dashboard: the money went back to the platform."""
        with self._lock:
            transfer = self._state.created["/v1/transfers"][transfer_id]
            transfer.update(reversed=True, amount_reversed=transfer["amount"])

    def _execute(
        self, path: str, params: dict[str, str], key: str | None, account: str | None, scripted: Scripted | None
    ) -> tuple[int, dict[str, str], bytes]:
        if scripted is not None and scripted.status != 200:
            return _error(scripted.status, scripted.error_type, scripted.code, scripted.message)
        if path == BANK_ACCOUNTS:
            token = params.get("external_account", "")
            if token.startswith("tok_fail_"):
                code = token.removeprefix("tok_fail_")
                return _error(400, "invalid_request_error", code, f"The bank account is not usable: {code}")
        if path == "/v1/payouts":
            with self._lock:
                token = self._state.bank_tokens.get(params.get("destination", ""), "")
                flaky = FLAKY.match(token)
                if flaky and key:
                    self._state.flaky_seen[key] += 1
                    if self._state.flaky_seen[key] <= int(flaky.group(1)):
                        return _error(500, "api_error", None, "An unknown error occurred", retry=True)
        obj = self._create(path, params, account)
        return 200, {}, json.dumps(obj).encode()

    def _create(self, path: str, params: dict[str, str], account: str | None) -> dict[str, Any]:
        object_id = f"{PREFIX[path]}_fake{next(self._ids):06d}"
        metadata = {k[len("metadata[") : -1]: v for k, v in params.items() if k.startswith("metadata[")}
        obj: dict[str, Any] = {"id": object_id, "object": OBJECT[path], "livemode": False, "metadata": metadata}
        if path in ("/v1/transfers", "/v1/payouts"):
            obj.update(amount=int(params.get("amount", "0")), currency=params.get("currency"))
        if path == "/v1/accounts":
            obj.update(type=params.get("type"), country=params.get("country"), email=params.get("email"))
        elif path == BANK_ACCOUNTS:
            obj.update(account=params.get("account"), last4="6789", default_for_currency=True)
        if path == "/v1/transfers":
            obj.update(
                destination=params.get("destination"),
                transfer_group=params.get("transfer_group"),
                reversed=False,
                amount_reversed=0,
            )
        if path == "/v1/payouts":
            obj.update(status="pending", account=account, destination=params.get("destination"))
        with self._lock:
            self._state.created[path][object_id] = obj
            if path == BANK_ACCOUNTS:
                self._state.bank_tokens[object_id] = params.get("external_account", "")
        return obj


def _error(
    status: int, error_type: str, code: str | None, message: str, retry: bool = False
) -> tuple[int, dict[str, str], bytes]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code:
        error["code"] = code
    headers = {"Stripe-Should-Retry": "true"} if retry or status == 429 or status >= 500 else {}
    return status, headers, json.dumps({"error": error}).encode()


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(self.command, self.path, headers, body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_fake{time.monotonic_ns()}")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout, or its process was killed): the result is stored anyway

        do_POST = _serve  # noqa: N815
        do_GET = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def sign_webhook(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``, computed as Stripe documents (HMAC-SHA256 of "t.payload")."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def payout_event(
    event_id: str,
    event_type: str,
    payout_id: str,
    withdrawal_id: str | None = None,
    generation: int = 0,
    failure_code: str | None = None,
) -> str:
    metadata = {"withdrawal_id": withdrawal_id, "attempt_generation": str(generation)} if withdrawal_id else {}
    payout = {
        "id": payout_id,
        "object": "payout",
        "status": "failed" if event_type == "payout.failed" else "paid",
        "failure_code": failure_code,
        "failure_message": "The bank account has been closed." if failure_code else None,
        "metadata": metadata,
    }
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": payout},
    }
    return json.dumps(event)
