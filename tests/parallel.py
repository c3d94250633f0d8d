"""Fire many HTTP requests at once (threads released together by a barrier) and collect the responses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

REQUEST_TIMEOUT_S = 60


def fire_together(calls: list[Callable[[requests.Session], requests.Response]]) -> list[requests.Response]:
    """Run every call in its own thread and session, all starting at the same moment; keep their order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[requests.Session], requests.Response]) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=REQUEST_TIMEOUT_S)
            return call(session)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> Callable[[requests.Session], requests.Response]:
    return lambda session: session.post(url, json=body, headers=headers, timeout=REQUEST_TIMEOUT_S)


def get(url: str, headers: dict[str, str]) -> Callable[[requests.Session], requests.Response]:
    return lambda session: session.get(url, headers=headers, timeout=REQUEST_TIMEOUT_S)
