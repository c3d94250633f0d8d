"""The payout worker: Celery tasks that pay withdrawals out. Imports shared/, never api/."""
