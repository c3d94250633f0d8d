"""Per-wallet rate limits: Flask-Limiter on Redis, configured here and applied with ``@rate_limited(...)``.

- Keyed by the authenticated caller's wallet, never the client IP: the limit is checked inside the view, after
  the blueprint's ``authenticate`` hook has set ``g.identity``; unauthenticated requests never reach it. The key
  is the caller's Firebase uid, which owns exactly one wallet (``users.firebase_uid`` and ``wallets.user_id``
  are unique), so the budget is per wallet and known before any database work: POST /deposit finds its wallet
  inside its one money statement, after this check.
- Moving window on Redis (a Lua script per hit), so every pod shares one exact budget per wallet.
- Redis unreachable: Flask-Limiter switches this process to in-memory counting (logging one warning per
  outage) and keeps serving; it probes Redis again with exponential backoff and switches back when it
  answers. :func:`limiter_fallback_active` tells readiness checks and metrics which mode is on.
- Over the limit: 429 ``rate_limited`` with ``Retry-After`` and the ``RateLimit-*`` headers. The view never
  runs, so nothing is recorded. Allowed requests carry no ``RateLimit-*`` headers: filling them costs a second
  Redis round trip (the window's state) on every deposit, and only the 429 needs them (see README, Benchmarks).
- Only the views under ``@rate_limited`` are limited (no default or application-wide limits), so Flask-Limiter's
  own before_request pass over every request is skipped: the check runs once, inside the limited view.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Blueprint
from limits import RateLimitItem, parse_many

from api.auth import current_identity
from api.errors import error_response
from shared.config import Config
from shared.observability import metrics

F = TypeVar("F", bound=Callable[..., Any])

DEPOSITS = "deposits"

# Exact: the 6th hit inside any one-second window is refused (a fixed window would allow 10 across a
# boundary). On Redis it is one atomic Lua script, so concurrent pods cannot both take the last slot.
STRATEGY = "moving-window"
KEY_PREFIX = "wallet-api"
# A Redis that does not answer must not stall deposits: give up quickly and fall back to memory.
REDIS_TIMEOUT_S = 0.5
EXTENSION = "wallet_rate_limits"
OPENAPI_DOC = {
    "responses": {
        "429": {
            "description": "`rate_limited`: too many requests for this wallet; retry after `Retry-After` seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
        }
    }
}


class WalletLimiter(Limiter):
    @property
    def fallback_active(self) -> bool:
        # Flask-Limiter (pinned) keeps this private flag: set when the storage fails, cleared once a backoff
        # probe reaches it again. tests/api/test_ratelimit_fallback.py guards the behaviour on upgrades.
        return bool(self._storage_dead)

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        # Flask-Limiter runs this from before_request on every request (for default and application limits,
        # which this API has none of) and again inside each decorated view; only the latter has work to do.
        if in_middleware:
            return
        super()._check_request_limit(callable_name, in_middleware)


class _AppLimits:
    """One app's limiter and the limited views, wrapped lazily so each app gets its own storage."""

    def __init__(self, limiter: WalletLimiter, limits: dict[str, str]) -> None:
        self.limiter = limiter
        self.limits = limits
        self._wrapped: dict[tuple[str, Callable[..., Any]], Callable[..., Any]] = {}
        self._lock = threading.Lock()
        # A limit of one item ("5/second") can be hit directly; "5/second;100/hour" always goes the long way.
        self._single_items: dict[str, RateLimitItem] = {
            name: items[0] for name, spec in limits.items() if len(items := parse_many(spec)) == 1
        }

    def allowed_at_once(self, name: str) -> bool:
        """Hit limit ``name`` on Redis directly: True when the hit was allowed (and counted).

        Flask-Limiter's own pass around the same Redis hit (filtering, exemption scopes, request-limit objects)
        cost about as much Python as the hit itself on every deposit. False means "let Flask-Limiter decide":
        the hit was refused (a refused moving-window hit counts nothing, so Flask-Limiter's repeat of it is
        refused too and builds the 429 with its headers), the storage failed (Flask-Limiter fails again and
        switches to memory), the process already counts in memory (Flask-Limiter also probes Redis), or the
        limit has several items. The key is Flask-Limiter's own: prefix, key function, endpoint as scope.
        """
        item = self._single_items.get(name)
        limiter = self.limiter
        if item is None or not limiter.enabled or limiter.fallback_active or request.endpoint is None:
            return False
        try:
            return limiter.limiter.hit(item, KEY_PREFIX, _wallet_key(), request.endpoint)
        except Exception:
            return False

    def wrapped(self, name: str, view: Callable[..., Any]) -> Callable[..., Any]:
        with self._lock:
            key = (name, view)
            if key not in self._wrapped:
                self._wrapped[key] = self.limiter.limit(self.limits[name])(view)
            return self._wrapped[key]


def _wallet_key() -> str:
    return f"uid:{current_identity().uid}"


def rate_limited(name: str) -> Callable[[F], F]:
    """Apply the per-wallet limit ``name`` (e.g. :data:`DEPOSITS`) to a protected view.

    Place it directly under ``@blp.route`` so that the limit is checked before the body is even parsed.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            limits: _AppLimits = current_app.extensions[EXTENSION]
            if limits.allowed_at_once(name):
                return view(*args, **kwargs)
            return limits.wrapped(name, view)(*args, **kwargs)

        return cast(F, Blueprint.doc(**OPENAPI_DOC)(wrapper))

    return decorate


def init_rate_limiter(app: Flask, config: Config) -> WalletLimiter:
    storage_uri = config.rate_limit_storage
    options: dict[str, Any] = {}
    if storage_uri.startswith(("redis://", "rediss://")):
        options = {"socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S}
    limiter = WalletLimiter(
        key_func=_wallet_key,
        storage_uri=storage_uri,
        storage_options=options,
        strategy=STRATEGY,
        key_prefix=KEY_PREFIX,
        in_memory_fallback_enabled=True,
        headers_enabled=False,  # written by _add_headers, in the standard RateLimit-* form
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = _AppLimits(limiter, {DEPOSITS: config.rate_limit_deposits})
    app.after_request(_add_headers)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    return limiter


def limiter_fallback_active(app: Flask | None = None) -> bool:
    """True while this process counts in memory because the rate limit storage is unreachable."""
    app = app or current_app
    limits: _AppLimits = app.extensions[EXTENSION]
    return limits.limiter.fallback_active


def _rate_limited(exc: RateLimitExceeded) -> Response:
    metrics.record_rate_limited(request.url_rule.rule if request.url_rule is not None else metrics.UNMATCHED_ENDPOINT)
    return error_response(
        429,
        "rate_limited",
        f"too many requests for this wallet: the limit is {exc.description}; retry after the delay given",
        {"limit": exc.description},
    )


def _add_headers(response: Response) -> Response:
    limits: _AppLimits | None = current_app.extensions.get(EXTENSION)
    if limits is not None:
        metrics.set_rate_limiter_fallback(limits.limiter.fallback_active)  # per process; livemax across them
    # Only a refusal carries the headers: reading the window is a Redis round trip of its own.
    if response.status_code != 429 or limits is None:
        return response
    current = limits.limiter.current_limit
    if current is None:
        return response
    try:
        reset_at, remaining = current.window
    except Exception:  # storage failed after the check; the next request will fall back
        return response
    seconds_to_reset = max(0, math.ceil(reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(max(0, remaining))
    response.headers["RateLimit-Reset"] = str(seconds_to_reset)
    response.headers["RateLimit-Policy"] = f"{current.limit.amount};w={current.limit.get_expiry()}"
    response.headers["Retry-After"] = str(max(1, seconds_to_reset))
    return response
