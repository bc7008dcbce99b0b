"""Set up Django for a benchmark script run as `python bench/NAME.py`.

Benchmarks run with debug off (Django would keep every query in memory otherwise), so
settings want a secret key and an encryption key: throwaway ones are given here, since a
benchmark signs and encrypts nothing that outlives it. With DATABASE_URL unset the
embedded PostgreSQL is used.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wizamart.settings")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
os.environ.setdefault("WIZAMART_ENCRYPTION_KEYS", "YmVuY2gtb25seS1ub3QtYS1zZWNyZXQtMzJieXRlcyE=")

import django  # noqa: E402

django.setup()
