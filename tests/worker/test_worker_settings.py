"""The worker's Celery settings for money, its module boundaries, and the backoff."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from shared.config import Config, ConfigError
from shared.payouts.celery_settings import PAYOUTS_QUEUE, celery_settings
from shared.payouts.retry import backoff_seconds
from tests.live_server import PROJECT_ROOT


def test_money_settings() -> None:
    settings = celery_settings(Config.from_env({}, redis_url="redis://127.0.0.1:6379/1"))
    assert settings["task_acks_late"] is True
    assert settings["task_reject_on_worker_lost"] is True
    assert settings["worker_prefetch_multiplier"] == 1
    assert (settings["worker_pool"], settings["worker_concurrency"]) == ("threads", 16)
    assert settings["task_default_queue"] == PAYOUTS_QUEUE
    assert settings["worker_send_task_events"] is True
    options = settings["broker_transport_options"]
    assert options["visibility_timeout"] == 3600
    assert (options["unacked_restore_interval"], options["unacked_restore_throttle"]) == (10, 10)


def test_embedded_broker_is_sqlite_under_var() -> None:
    settings = celery_settings(Config.from_env({}))
    assert settings["broker_url"].startswith("sqla+sqlite:///") and settings["broker_url"].endswith(
        "var/broker.sqlite3"
    )
    assert settings["broker_transport_options"] == {"connect_args": {"check_same_thread": False, "timeout": 30}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"payout_gateway": "paypal"}, "PAYOUT_GATEWAY"),
        ({"payout_gateway": "stripe"}, "STRIPE_SECRET_KEY"),
        ({"payout_max_attempts": 0}, "PAYOUT_MAX_ATTEMPTS"),
        ({"payout_lease_seconds": 60}, "PAYOUT_LEASE_SECONDS"),
        ({"celery_visibility_timeout_seconds": 400}, "CELERY_VISIBILITY_TIMEOUT_SECONDS"),
        ({"payout_retry_base_ms": 0}, "PAYOUT_RETRY"),
    ],
)
def test_unsafe_payout_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env({}, **overrides)


def test_gateway_defaults_to_stripe_only_with_a_key() -> None:
    assert Config.from_env({}).payout_gateway_kind == "simulated"
    assert Config.from_env({"STRIPE_SECRET_KEY": "sk_test_x"}).payout_gateway_kind == "stripe"
    assert Config.from_env({"STRIPE_SECRET_KEY": "sk_test_x", "PAYOUT_GATEWAY": "simulated"}).payout_gateway_kind == (
        "simulated"
    )


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 30.0)]:
        delays = [backoff_seconds(attempt, 1000, 30_000, rng) for _ in range(200)]
        assert cap / 2 <= min(delays) and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # jittered, not lockstep


def _imports(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)


def test_worker_needs_no_flask_and_api_never_imports_worker() -> None:
    worker = _imports("import sys, worker.tasks; print(sorted(m for m in sys.modules if m in ('flask', 'api')))")
    assert worker.stdout.strip() == "[]", worker.stderr
    api = _imports("import sys, api; print([m for m in sys.modules if m == 'worker' or m.startswith('worker.')])")
    assert api.stdout.strip() == "[]", api.stderr


def test_only_the_gateway_modules_import_stripe() -> None:
    importers = sorted(
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("api", "worker", "shared")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "import stripe" in path.read_text()
    )
    assert importers == ["shared/payouts/stripe_gateway.py", "shared/payouts/stripe_webhooks.py"]


def test_the_worker_refuses_the_simulated_gateway_in_production() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYOUT_"))}
    env.update(APP_ENV="production", FIREBASE_PROJECT_ID="p")
    result = _imports("import worker.celery_app", env)
    assert result.returncode != 0 and "needs the Stripe gateway" in result.stderr

    env.update(ALLOW_SIMULATED_PAYOUTS="true")  # explicitly wanted (a staging stack)
    allowed = _imports("import worker.celery_app", env)
    assert allowed.returncode == 0, allowed.stderr


def test_every_payout_setting_is_documented() -> None:
    env_example = (PROJECT_ROOT / ".env.example").read_text()
    readme = (PROJECT_ROOT / "README.md").read_text()
    payout_vars = [
        name
        for name in Config.documented_variables()
        if name.startswith(("PAYOUT_", "STRIPE_", "SIMULATED_", "CELERY_WORKER", "CELERY_VISIBILITY", "FLOWER_"))
    ]
    assert len(payout_vars) == 19
    for name in payout_vars:
        assert f"\n{name}=" in env_example, name
        assert name in readme, name
