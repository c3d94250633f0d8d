"""What one worker process uses: config, database, gateway, queue. Built once, on first use."""

from __future__ import annotations

import functools
from dataclasses import dataclass

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
