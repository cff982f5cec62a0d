"""Helpers shared by the benchmarks (imported by them; not a benchmark itself)."""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
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


def start_fake_server() -> tuple[subprocess.Popen, str, Any]:
    """The loopback fake of OpenAI and Anthropic (tests/fakes/llm_server.py) in a process of its
    own: (process, base URL, its log file). Stop it with ``stop_fake_server``."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by main() after the server stops)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.llm_server", "--port", "0"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    address = ready_address(process)
    if address is None:
        process.kill()
        log.seek(0)
        raise RuntimeError(f"the fake LLM server did not start: {log.read().decode(errors='replace')[-2000:]}")
    return process, address, log


def ready_address(process: subprocess.Popen, timeout: float = 30.0) -> str | None:
    """The address a server process prints on its ``READY <address>`` line (stdout, text mode),
    or None when it exits or stays silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return line.split()[1].strip()
            if not line and process.poll() is not None:
                return None
    return None


def stop_fake_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def temporary_django(prefix: str, pg_database: str, extra: dict[str, str] | None = None) -> str:
    """Django set up and migrated for a one-process benchmark: ``configure_django`` in a temporary
    var/ directory (removed at exit, with the static folder WhiteNoise expects). Answers the mode."""
    import atexit
    import shutil

    import django

    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, var_dir, True)
    (var_dir / "staticfiles").mkdir()
    mode = configure_django(var_dir, pg_database, extra)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return mode


def studio_member(label: str, role: str):
    """An agency of its own with one member of ``role`` assigned to one creator, for the benchmarks
    that run the studio's code in one process: (agency, user, membership, creator). Delete the
    agency and the user afterwards on a shared server (``delete_studio_member``)."""
    from apps.accounts.models import Agency, Creator, CreatorAssignment, Membership, User

    agency = Agency.objects.create(name=f"Bench {label}")
    user = User.objects.create_user(email=f"{label}-{os.getpid()}@bench.huntaze.local", password=None)
    membership = Membership.objects.create(agency=agency, user=user, role=role)
    creator = Creator.objects.create(
        agency=agency, display_name="Bench Star", niche="travel", persona="A cheerful travel creator.",
        voice="Warm, short sentences.", sample_texts=["morning from Lisbon!", "who wants the beach set?"],
    )  # fmt: skip
    CreatorAssignment.objects.create(agency=agency, membership=membership, creator=creator)
    return agency, user, membership, creator


def delete_studio_member(agency, user) -> None:
    from apps.accounts.models import Agency, User

    Agency.objects.filter(pk=agency.pk).delete()
    User.objects.filter(pk=user.pk).delete()


def paired_cpu(pairs: dict[str, tuple], calls: int, rounds: int) -> dict[str, tuple[float, float, float]]:
    """For each ``name: (before, after)`` pair of no-argument functions, the CPU of one call of
    each (``time.thread_time`` of this thread, so other processes do not count), measured over
    ``rounds`` rounds of ``calls`` calls, before and after alternating which goes first, after one
    warm-up round. Answers ``name: (before ms, after ms, after / before)``, the medians of the
    rounds and of the paired ratios, rounded to the microsecond."""
    import statistics

    def cpu_ms(function) -> float:
        began = time.thread_time()
        for _ in range(calls):
            function()
        return 1000 * (time.thread_time() - began) / calls

    for before, after in pairs.values():  # warm-up: imports, templates, connections
        cpu_ms(before), cpu_ms(after)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pairs}
    for index in range(rounds):
        for name, (before, after) in pairs.items():
            if index % 2:
                spent_after, spent_before = cpu_ms(after), cpu_ms(before)
            else:
                spent_before, spent_after = cpu_ms(before), cpu_ms(after)
            samples[name].append((spent_before, spent_after))
    return {
        name: (
            round(statistics.median(b for b, _ in values), 3),
            round(statistics.median(a for _, a in values), 3),
            round(statistics.median(a / b for b, a in values), 3),
        )
        for name, values in samples.items()
    }


def report(result: dict, missed: list[str]) -> int:
    """A one-process benchmark's ending: each missed target printed as MISSED, the result as the
    last line of JSON (with ``missed``), and the exit code (1 when a target was missed)."""
    for item in missed:
        print(f"MISSED  {item}")
    result["missed"] = missed
    print(json.dumps(result))
    return 1 if missed else 0


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
