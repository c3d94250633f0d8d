"""What one worker process uses: config, database, gateway, queue, provider-call threads. Built once, on first use."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shared import ledger
from shared.config import Config
from shared.db import Database
from shared.payouts.factory import build_gateway
from shared.payouts.gateway import PayoutGateway
from shared.payouts.queue import PayoutQueue


@dataclass(frozen=True)
class Runtime:
    config: Config
    database: Database
    gateway: PayoutGateway
    queue: PayoutQueue
    # The items of a batch call the provider in parallel (its calls are network waits), at most
    # PAYOUT_CONCURRENCY at once in this process whatever the number of batches in flight. Threads start on
    # demand; they never touch the database (the batch's own thread records the outcomes).
    provider_calls: ThreadPoolExecutor = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        executor = ThreadPoolExecutor(self.config.payout_concurrency, thread_name_prefix="payout-provider")
        object.__setattr__(self, "provider_calls", executor)

    @property
    def policy(self) -> ledger.PayoutPolicy:
        return ledger.PayoutPolicy(
            lease_seconds=self.config.payout_lease_seconds, max_attempts=self.config.payout_max_attempts
        )

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        return cls(config, Database.from_config(config), build_gateway(config), PayoutQueue(config))


@functools.cache
def get_runtime() -> Runtime:
    return Runtime.from_config(Config.from_env())
