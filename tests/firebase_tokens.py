"""Firebase-shaped ID tokens signed by a test key, and a local server publishing its certificate.

firebase-admin verifies RS256 signatures against X.509 certificates it fetches from Google
(``firebase_admin._token_gen.ID_TOKEN_CERT_URI``, read when an app's auth client is built). Tests point that
URL at :class:`CertServer` so every check — signature, kid, alg, aud, iss, exp — runs for real, offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PROJECT_ID = "demo-test"
ISSUER = f"https://securetoken.google.com/{PROJECT_ID}"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    certificate_pem: str


def make_signing_key(kid: str) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid, private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode())


def claims(uid: str, email: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The claims of a Google sign-in ID token, valid for an hour; ``overrides`` replace (None removes)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": PROJECT_ID,
        "auth_time": now - 5,
        "user_id": uid,
        "sub": uid,
        "iat": now - 5,
        "exp": now + 3600,
        "email": email,
        "email_verified": True,
        "firebase": {"identities": {"google.com": [uid], "email": [email]}, "sign_in_provider": "google.com"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sign(payload: dict[str, Any], key: SigningKey, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, key.private_pem, algorithm="RS256", headers={"kid": key.kid, **(headers or {})})


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A JWT with whatever header we like and no signature: what an attacker (or the emulator) sends."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(payload)}."


class CertServer:
    """Serves ``{kid: certificate PEM}`` like Google's x509 endpoint, on a free loopback port."""

    def __init__(self, keys: list[SigningKey]) -> None:
        body = json.dumps({key.kid: key.certificate_pem for key in keys}).encode()
        self.fetches = 0
        self.cache_control = "public, max-age=3600"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/certs"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
