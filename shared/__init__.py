"""Code shared by the API and the worker: config, database, models and the ledger."""
