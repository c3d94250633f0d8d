"""Google's public keys for ID tokens, kept in memory for as long as Google says they stay valid.

firebase-admin fetches the signing certificates through ``requests`` wrapped in CacheControl, so even with a
cached response every verification pays for a request's preparation, proxy lookups in the environment and
the cached response's deserialization: about 72% of a verification's 1.4 ms (README, Benchmarks). This
transport answers a repeated GET from memory until the response's ``max-age`` runs out, then fetches again;
responses without a max-age (or not 200) are never kept, exactly as an HTTP cache would.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.auth import transport

log = logging.getLogger(__name__)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_NOT_STORED = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


def max_age_seconds(headers: Mapping[str, str]) -> int:
    """The response's freshness lifetime from Cache-Control; 0 when it must not be reused."""
    value = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    if _NOT_STORED.search(value):
        return 0
    match = _MAX_AGE.search(value)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True, slots=True)
class _Fresh:
    response: transport.Response
    expires_at: float


class CachedCertificates(transport.Request):
    """A google-auth transport that answers repeated GETs from memory while the response is fresh."""

    def __init__(self, delegate: transport.Request, clock: Callable[[], float] = time.monotonic) -> None:
        self._delegate = delegate
        self._clock = clock
        self._fresh: dict[str, _Fresh] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        if method != "GET" or body is not None:
            return self._delegate(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
        fresh = self._fresh.get(url)
        if fresh is not None and fresh.expires_at > self._clock():
            return fresh.response
        with self._lock:  # one fetch per expiry, however many threads verify at that moment
            fresh = self._fresh.get(url)
            if fresh is not None and fresh.expires_at > self._clock():
                return fresh.response
            response = self._delegate(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
            self.fetches += 1
            lifetime = max_age_seconds(response.headers) if response.status == 200 else 0
            log.info("public keys fetched (HTTP %d), kept %d s by process %d", response.status, lifetime, os.getpid())
            if lifetime:
                response.data  # noqa: B018  (read the body now, while its connection is ours)
                self._fresh[url] = _Fresh(response, self._clock() + lifetime)
            else:
                self._fresh.pop(url, None)
            return response
