"""Loaded by pytest before Django (``-p tests.environment`` in pyproject.toml).

Gives every test run its own world before settings are read:
- a private var/ directory (SQLite test database, Celery broker file, generated secret key), so
  a running ``make run`` is never touched;
- a private Redis key prefix (cache, channel layer, Celery), whose keys are deleted at the end,
  when REDIS_URL points the run at a real Redis.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

RUN_ID = uuid.uuid4().hex[:10]
_VAR_DIR = None

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("REDIS_KEY_PREFIX", f"huntaze-test-{RUN_ID}")
if "HUNTAZE_VAR_DIR" not in os.environ:
    _VAR_DIR = tempfile.mkdtemp(prefix="huntaze-test-var-")
    os.environ["HUNTAZE_VAR_DIR"] = _VAR_DIR
os.environ.setdefault("EMAIL_URL", "memorymail://")
# Tests flush the AI ledger themselves; a background writer thread would not see their transaction.
os.environ.setdefault("AI_LEDGER_FLUSH_SECONDS", "0")
# The same for metrics (apps/core/metrics.py): tests call metrics.flush() when they want the sinks.
os.environ.setdefault("METRICS_FLUSH_SECONDS", "0")
# Tests send many messages from one creator in a moment; the platform-like default (one every 3 s
# per account) would only make them wait. tests/delivery/test_limits.py sets real limits itself.
os.environ.setdefault(
    "DELIVERY_RATE_LIMITS",
    '{"account": {"limit": 1000, "seconds": 1}, "creator": {"limit": 1000, "seconds": 1},'
    ' "agency": {"limit": 1000, "seconds": 1}, "global": {"limit": 10000, "seconds": 1}}',
)


def pytest_report_header(config) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [
        f"huntaze: database={db} redis={'yes' if settings.REDIS_URL else 'no'} "
        f"broker={settings.CELERY_BROKER_URL.split('://')[0]} prefix={settings.REDIS_KEY_PREFIX}"
    ]


def pytest_unconfigure(config) -> None:
    redis_url = os.environ.get("REDIS_URL")
    prefix = os.environ["REDIS_KEY_PREFIX"]
    if redis_url and prefix.startswith("huntaze-test-"):
        import redis

        client = redis.Redis.from_url(redis_url)
        for pattern in (f"{prefix}*", f":1:{prefix}*", f"*{prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    if _VAR_DIR:
        shutil.rmtree(_VAR_DIR, ignore_errors=True)
