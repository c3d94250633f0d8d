"""The API's enqueue on a real Redis broker: one drain message serves every withdrawal committed before it
claims; a drain clears the flag; a broker that is down answers False and leaves no flag behind."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from shared.config import Config
from shared.payouts.celery_settings import DRAIN_PAYOUTS_TASK, PAYOUTS_QUEUE, PROCESS_WITHDRAWAL_TASK
from shared.payouts.queue import DRAIN_SCHEDULED_KEY, DRAIN_SCHEDULED_TTL_MS, PayoutQueue
from tests.private_redis import ThrowawayRedis, start_redis


@pytest.fixture(scope="module")
def broker() -> Iterator[ThrowawayRedis]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def queue(config: Config, broker: ThrowawayRedis) -> Iterator[PayoutQueue]:
    client = redis.Redis.from_url(broker.url())
    client.flushdb()
    queue = PayoutQueue(config.replace(celery_broker_url=broker.url()))
    yield queue
    queue.close()
    client.close()


def _published(broker: ThrowawayRedis) -> list[tuple[str, list[str]]]:
    client = redis.Redis.from_url(broker.url())
    messages = [json.loads(raw) for raw in reversed(client.lrange(PAYOUTS_QUEUE, 0, -1))]  # oldest first
    client.close()
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def test_one_drain_message_serves_many_withdrawals_until_a_drain_rearms(
    queue: PayoutQueue, broker: ThrowawayRedis
) -> None:
    assert all(queue.enqueue(uuid.uuid4()) for _ in range(5))
    assert _published(broker) == [(DRAIN_PAYOUTS_TASK, [])]
    flag_ttl = redis.Redis.from_url(broker.url()).pttl(DRAIN_SCHEDULED_KEY)
    assert 0 < flag_ttl <= DRAIN_SCHEDULED_TTL_MS  # a lost message delays new withdrawals by 2 s at most

    queue.rearm()  # what a drain does before each claim
    assert queue.enqueue(uuid.uuid4())
    assert _published(broker) == [(DRAIN_PAYOUTS_TASK, [])] * 2


def test_the_sweeper_and_retries_enqueue_one_withdrawal_each(queue: PayoutQueue, broker: ThrowawayRedis) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert queue.enqueue_one(first) and queue.enqueue_one(second, countdown=5)
    assert _published(broker) == [(PROCESS_WITHDRAWAL_TASK, [str(first)]), (PROCESS_WITHDRAWAL_TASK, [str(second)])]


def test_a_broker_that_is_down_answers_false_and_leaves_no_flag(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    down = start_redis()
    url = down.url()
    down.stop()
    queue = PayoutQueue(config.replace(celery_broker_url=url))
    try:
        withdrawal_id = uuid.uuid4()
        assert queue.enqueue(withdrawal_id) is False
        assert queue.enqueue_one(withdrawal_id) is False
    finally:
        queue.close()
    assert f"could not enqueue withdrawal {withdrawal_id}; the sweeper will pick it up" in caplog.text
