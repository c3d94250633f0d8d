"""The production WSGI app with Google's ID-token public keys served from a local URL (benchmark only).

firebase-admin fetches the keys from ID_TOKEN_CERT_URI and caches them for the response's max-age; the
benchmark serves its own test key there (no network here) and counts the fetches. Nothing else differs from
``api.wsgi``: ``gunicorn bench.firebase_wsgi:app`` with BENCH_FIREBASE_CERT_URL set.
"""

import os

from firebase_admin import _token_gen

_token_gen.ID_TOKEN_CERT_URI = os.environ["BENCH_FIREBASE_CERT_URL"]

from api.wsgi import app  # noqa: E402  (after the patch: the verifier reads the URL when it is built)

__all__ = ["app"]
