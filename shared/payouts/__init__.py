"""Paying withdrawals out: the gateway protocol, its simulated and Stripe implementations, the task queue.

Only :mod:`shared.payouts.stripe_gateway` and :mod:`shared.payouts.stripe_webhooks` import ``stripe``.
Import submodules directly; this package imports nothing so the ledger can use :mod:`keys` cheaply.
"""
