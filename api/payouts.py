"""The API's side of the payout pipeline: the enqueue client, and ETags for polling withdrawals."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from flask import Flask, Response, current_app, jsonify, request

from shared.config import Config
from shared.payouts.queue import PayoutQueue


def init_payout_queue(app: Flask, config: Config) -> None:
    app.extensions["wallet_payout_queue"] = PayoutQueue(config)


def enqueue_payout(withdrawal_id: uuid.UUID) -> bool:
    """Call after the withdrawal committed; never raises (the sweeper covers a failed enqueue)."""
    queue: PayoutQueue = current_app.extensions["wallet_payout_queue"]
    return queue.enqueue(withdrawal_id)


def conditional_json(data: dict[str, Any]) -> Response:
    """200 with a strong ETag over the body, or 304 when the client's If-None-Match still matches."""
    response = jsonify(data)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    response.set_etag(hashlib.sha256(canonical).hexdigest()[:32])
    return response.make_conditional(request)
