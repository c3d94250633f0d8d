"""Choose the payout gateway from the config."""

from __future__ import annotations

from shared.config import Config
from shared.payouts.gateway import PayoutGateway


def build_gateway(config: Config) -> PayoutGateway:
    if config.payout_gateway_kind == "stripe":
        from shared.payouts.stripe_gateway import StripeGateway

        assert config.stripe_secret_key is not None  # Config refuses stripe without a key
        return StripeGateway(
            config.stripe_secret_key,
            api_base=config.stripe_api_base,
            timeout_seconds=config.stripe_timeout_seconds,
            currency=config.stripe_currency,
            country=config.stripe_account_country,
        )
    from shared.payouts.simulated import SimulatedGateway

    return SimulatedGateway(latency_ms=config.simulated_payout_latency_ms)
