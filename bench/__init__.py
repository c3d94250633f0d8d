"""`make bench`: the real stack (gunicorn, PostgreSQL, Redis, Celery) measured against same-run floors.

Run ``python -m bench --help`` for the options; README.md (Benchmarks) explains what each section measures.
"""
