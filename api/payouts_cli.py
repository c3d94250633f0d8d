"""``flask payouts list|requeue|cancel``: the operator's tools for the payout pipeline."""

from __future__ import annotations

import getpass
import uuid

import click
from flask import Flask
from flask.cli import AppGroup

from api.extensions import get_database
from api.payouts import enqueue_payout
from shared import ledger
from shared.models import Withdrawal, WithdrawalStatus

payouts_cli = AppGroup("payouts", help="Inspect and repair withdrawals in the payout pipeline.")


def _actor(given: str | None) -> str:
    return f"cli:{given or getpass.getuser()}"


def _line(w: Withdrawal) -> str:
    failure = f" {w.failure_code}: {w.failure_message}" if w.failure_code else ""
    return (
        f"{w.id}  {w.status:<10} {w.amount_cents:>10}c  attempts={w.attempts} gen={w.attempt_generation}  "
        f"updated={w.updated_at.isoformat(timespec='seconds')}{failure}"
    )


@payouts_cli.command("list")
@click.option("--status", type=click.Choice([s.value for s in WithdrawalStatus]), help="only this status")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_command(status: str | None, limit: int) -> None:
    """List withdrawals, most recently changed first."""
    with get_database().session() as session:
        rows = ledger.list_for_operator(session, WithdrawalStatus(status) if status else None, limit)
        for withdrawal in rows:
            click.echo(_line(withdrawal))
    if not rows:
        click.echo("no withdrawals", err=True)


@payouts_cli.command("requeue")
@click.argument("withdrawal_id", type=click.UUID)
@click.option("--reason", help="recorded in the audit table")
@click.option("--actor", help="who you are (default: your OS user)")
@click.option("--force", is_flag=True, help="requeue even if Stripe may have forgotten its keys (check Stripe first)")
def requeue_command(withdrawal_id: uuid.UUID, reason: str | None, actor: str | None, force: bool) -> None:
    """Send a failed withdrawal back to the worker (failed -> pending)."""
    with get_database().session() as session:
        try:
            withdrawal = ledger.requeue(session, withdrawal_id, _actor(actor), reason, force=force)
        except ledger.LedgerError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
        enqueued = enqueue_payout(withdrawal.id)
        click.echo(_line(withdrawal))
    click.echo("enqueued" if enqueued else "not enqueued (broker unreachable); the sweeper will pick it up")


@payouts_cli.command("cancel")
@click.argument("withdrawal_id", type=click.UUID)
@click.option("--reason", help="recorded in the audit table")
@click.option("--actor", help="who you are (default: your OS user)")
@click.option("--force", is_flag=True, help="cancel even if the money may have left (check Stripe first)")
def cancel_command(withdrawal_id: uuid.UUID, reason: str | None, actor: str | None, force: bool) -> None:
    """Cancel a failed (or never started) withdrawal and give the amount back to the wallet."""
    with get_database().session() as session:
        try:
            withdrawal = ledger.cancel(session, withdrawal_id, _actor(actor), reason, force=force)
        except ledger.LedgerError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
        click.echo(_line(withdrawal))
    click.echo(f"refunded {withdrawal.amount_cents} cents to wallet {withdrawal.wallet_id}")


def register(app: Flask) -> None:
    app.cli.add_command(payouts_cli)
