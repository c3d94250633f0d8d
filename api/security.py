"""Production safety on every response: security headers, CORS only for the configured origins, and
log redaction of tokens and keys (see shared/redaction.py)."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS

from api.idempotency import HEADER as IDEMPOTENCY_KEY_HEADER
from api.idempotency import REPLAYED_HEADER
from shared.config import Config
from shared.redaction import configured_secrets, install_log_redaction

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# JSON loads nothing and is never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI (/docs) loads its script and styles from the CDN in OPENAPI_SWAGGER_UI_URL, starts with an inline
# script and fetches /openapi.json.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://cdn.jsdelivr.net; "
    "connect-src 'self'; frame-ancestors 'none'"
)
# Balances and payouts must never sit in a shared or browser cache. Views that want revalidation (an ETag on
# a withdrawal) set their own Cache-Control, which is kept.
DEFAULT_CACHE_CONTROL = "no-store"
# Two years, every subdomain: once a browser has seen the API over HTTPS, it never tries plain HTTP.
HSTS = "max-age=63072000; includeSubDomains"
CORS_MAX_AGE_S = 600
CORS_EXPOSED_HEADERS = [
    "Location",
    "ETag",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    REPLAYED_HEADER,
]


def init_security(app: Flask, config: Config) -> None:
    install_log_redaction(configured_secrets(config))
    if config.cors_origins:
        CORS(
            app,
            origins=list(config.cors_origins),
            methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", IDEMPOTENCY_KEY_HEADER],
            expose_headers=CORS_EXPOSED_HEADERS,
            supports_credentials=False,  # bearer tokens, never cookies
            max_age=CORS_MAX_AGE_S,
        )
    hsts = config.is_production

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        is_docs = response.mimetype == "text/html" and request.path.startswith("/docs")
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if is_docs else API_CSP)
        response.headers.setdefault("Cache-Control", DEFAULT_CACHE_CONTROL)
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
