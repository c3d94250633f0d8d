"""Google's public keys are fetched once per max-age, not per verification: the transport alone, then through
firebase-admin with real RS256 tokens against a local certificate server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import firebase_admin
import pytest
from google.auth import transport

from api import create_app
from api.auth import EMULATOR_HOST_VARIABLE, FirebaseTokenVerifier
from api.firebase_certs import CachedCertificates, max_age_seconds
from shared.config import Config
from tests.firebase_tokens import CertServer, SigningKey, claims, make_signing_key, sign


class _Response(transport.Response):
    def __init__(self, status: int, headers: dict[str, str], data: bytes = b"{}") -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class _Origin(transport.Request):
    """Answers every request with the next scripted response, counting calls."""

    def __init__(self, *responses: _Response) -> None:
        self.responses = list(responses)
        self.calls: list[str] = []

    def __call__(self, url: str, method: str = "GET", body: Any = None, **_: Any) -> transport.Response:
        self.calls.append(method)
        return self.responses.pop(0)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [("public, max-age=19302, must-revalidate, no-transform", 19302), ("max-age=0", 0), ("no-store, max-age=60", 0),
     ("private", 0), ("", 0), ("Public, MAX-AGE=5", 5)],
)  # fmt: skip
def test_max_age_is_read_from_cache_control(cache_control: str, seconds: int) -> None:
    assert max_age_seconds({"Cache-Control": cache_control}) == seconds


def test_a_fresh_response_is_reused_until_its_max_age_runs_out() -> None:
    clock = _Clock()
    first, second = _Response(200, {"cache-control": "max-age=60"}), _Response(200, {"cache-control": "max-age=60"})
    origin = _Origin(first, second)
    certs = CachedCertificates(origin, clock)
    assert [certs("https://keys") for _ in range(3)] == [first] * 3
    clock.now += 59.9
    assert certs("https://keys") is first
    clock.now += 0.2
    assert certs("https://keys") is second
    assert (origin.calls, certs.fetches) == (["GET", "GET"], 2)


def test_errors_uncacheable_responses_and_other_methods_always_go_to_the_origin() -> None:
    origin = _Origin(
        _Response(503, {"cache-control": "max-age=60"}),
        _Response(200, {}),
        _Response(200, {"cache-control": "max-age=60"}),
        _Response(200, {"cache-control": "max-age=60"}),
    )
    certs = CachedCertificates(origin, _Clock())
    assert certs("https://keys").status == 503
    assert certs("https://keys").headers == {}
    certs("https://keys")
    certs("https://keys", method="POST", body=b"x")
    assert origin.calls == ["GET", "GET", "GET", "POST"]


@pytest.fixture
def key() -> SigningKey:
    return make_signing_key("cache-kid")


@pytest.fixture
def cert_server(key: SigningKey) -> Iterator[CertServer]:
    server = CertServer([key])
    yield server
    server.close()


def test_firebase_admin_fetches_the_keys_once_for_many_verifications(
    config: Config, cert_server: CertServer, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert EMULATOR_HOST_VARIABLE not in os.environ
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", cert_server.url)
    verifier = FirebaseTokenVerifier(config.replace(auth_dev_bypass=False))
    assert verifier.certificates is not None, "firebase-admin moved its token verifier: keys are not cached"
    for n in range(20):
        assert verifier.verify(sign(claims(f"uid-{n}"), key)).uid == f"uid-{n}"
    assert (cert_server.fetches, verifier.certificates.fetches) == (1, 1)


@pytest.mark.usefixtures("db_session")  # empties the tables the requests wrote
def test_keys_served_without_a_max_age_are_fetched_every_time(
    config: Config, cert_server: CertServer, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_server.cache_control = "no-cache"
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", cert_server.url)
    app = create_app(config.replace(auth_dev_bypass=False))
    try:
        client = app.test_client()
        for n in range(3):
            token = sign(claims(f"uid-{n}"), key)
            assert client.get("/wallet", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        app.extensions["wallet_db"].dispose()
    assert cert_server.fetches == 3
