"""Helpers shared by the benchmarks (imported by them; not a benchmark itself)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def configure_django(var_dir: Path, pg_database: str, extra: dict[str, str] | None = None) -> str:
    """Environment for the project's settings in a benchmark's own var/ directory: DEBUG off,
    keys of its own, and PostgreSQL database ``pg_database`` (created if missing) on the server of
    ``DATABASE_URL`` when that is set, else SQLite under ``var_dir``. Answers "services" or
    "embedded"."""
    var_dir.mkdir(parents=True, exist_ok=True)
    keys_file = var_dir / "bench-keys.json"
    if not keys_file.exists():
        from cryptography.fernet import Fernet

        keys_file.write_text(
            json.dumps({"secret": secrets.token_urlsafe(50), "fernet": Fernet.generate_key().decode()})
        )
    keys = json.loads(keys_file.read_text())
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "huntaze.settings",
            "DEBUG": "false",
            "SECRET_KEY": keys["secret"],
            "ENCRYPTION_KEYS": keys["fernet"],
            "SECURE_SSL_REDIRECT": "false",
            "HUNTAZE_VAR_DIR": str(var_dir),
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "SIMULATE_FANS": "false",
            **(extra or {}),
        }
    )
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return "embedded"
    parts = urlsplit(url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + pg_database))
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pg_database]).fetchone():
            conn.execute(f'CREATE DATABASE "{pg_database}"')
    return "services"


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix:`` (a benchmark's own namespace); answers how many."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch = []
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
