"""Incremental sync throughput: fans, messages and transactions from the third-party API, and webhooks.

On the product's code path (``apps.integrations.sync.sync_run`` through the real HTTP connector),
against the loopback fake provider of tests/fakes/platforms.py (cursor pages of
``INTEGRATIONS_SYNC_PAGE_SIZE`` = 500 items, as the provider pages), on the database of the mode
(SQLite file, or PostgreSQL when ``DATABASE_URL`` is set):

- ``initial_sync_s``: an empty database takes every fan, every fan message and every transaction
  (full: 100,000 fans, 500,000 messages, 10,000 transactions; ``--quick``: 2,000 / 10,000 / 200);
- ``incremental_sync_s``: then 1% of fans change, 1% new messages and 1% new transactions arrive,
  and a second run takes exactly those (from its cursors);
- ``webhooks_per_s``: signed ``messages.received`` webhooks posted to the endpoint, verified and
  stored (answered ``pending``), per second; then the processing the endpoint queued is run
  (untimed against the target) and every one must be applied (``webhooks_applied_per_s``);
- ``records_per_s``: records of the initial sync per second.

Targets, and why: ``records_per_s`` >= 500 (one creator's whole history of 600,000 records comes
in within 20 minutes on its first sync, in the background; pages go through messaging's
idempotent bulk ingest, apps/messaging/ingest.py, which is what makes a re-run change nothing);
``incremental_sync_s`` <= 5 s (the issue's; what beat runs every 15 minutes per account);
``webhooks_per_s`` >= 500 (the issue's). The issue's ``initial_sync_s`` <= 120 s for the full size
(5,000 records/s) is checked only for the full size. Prints a table, then one JSON line; exits 1
when a target is missed. Usage:

    python bench/sync.py [--quick | --fans N]                                       # embedded (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/sync.py --quick   # PostgreSQL
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FULL = {"fans": 100_000, "messages_per_fan": 5, "transactions": 10_000, "webhooks": 2_000}
QUICK = {"fans": 2_000, "messages_per_fan": 5, "transactions": 200, "webhooks": 500}
MIN_RECORDS_PER_S = 500
MAX_INCREMENTAL_S = 5.0
MIN_WEBHOOKS_PER_S = 500
MAX_INITIAL_FULL_S = 120.0
# Two copies running side by side (two engineers on one machine) each take their own database:
# SYNC_BENCH_NAME=<name> gives var/<name> and the PostgreSQL database hz_<name>.
BENCH_NAME = os.environ.get("SYNC_BENCH_NAME", "sync_bench")
PG_DATABASE = f"hz_{BENCH_NAME}"


def run(size: dict) -> dict:
    from _support import configure_django

    mode = configure_django(
        ROOT / "var" / BENCH_NAME.replace("_", "-"), PG_DATABASE,
        {"CELERY_BROKER_URL": "memory://", "INTEGRATIONS_API_ALLOW_LOOPBACK": "true"},
    )  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection as db

    from apps.accounts.models import Agency, Creator
    from apps.core.models import OutboxEvent
    from apps.integrations.models import Connection, SyncRun, WebhookEvent
    from apps.integrations.sync import sync_run
    from apps.messaging.models import Conversation, Fan, Message, Purchase
    from tests.fakes.platforms import FakeCreatorApi

    call_command("migrate", verbosity=0)
    agency, _ = Agency.objects.get_or_create(name="Sync bench")
    creator, _ = Creator.objects.get_or_create(agency=agency, display_name="Sync bench creator")
    _clear(db, agency, (SyncRun, WebhookEvent, Purchase, Message, Conversation, Fan, OutboxEvent))
    Connection.objects.filter(creator=creator).delete()

    fake = FakeCreatorApi().start()
    fake.state.record_requests = False
    account = fake.account("bench-acct", "bench-key")
    fake.seed(account, fans=size["fans"], messages_per_fan=size["messages_per_fan"])
    step = max(1, size["fans"] // size["transactions"])
    for n in range(1, size["fans"] + 1, step):
        account.add_transaction(f"fan-{n}", "tip", "7.50")
    secret = "whsec_bench"
    connection = Connection.objects.create(
        agency=agency, creator=creator, platform="onlyfans", status="connected", api_base_url=fake.base_url,
        api_key="bench-key", api_account_id="bench-acct", webhook_secret=secret,
    )  # fmt: skip
    expected_initial = size["fans"] + size["fans"] * size["messages_per_fan"] + len(account.transactions)

    began, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    initial = sync_run(connection_id=connection.pk).run
    initial_s, initial_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    load = (load, os.getloadavg()[0])

    changes = max(1, size["fans"] // 100)
    with fake.lock:
        for n in range(1, changes + 1):
            account.put_fan(f"fan-{n * 97 % size['fans'] + 1}", name=f"Changed {n}", state="expired")
            account.add_message(f"fan-{n * 31 % size['fans'] + 1}", f"new message {n}")
            account.add_transaction(f"fan-{n * 13 % size['fans'] + 1}", "tip", "3.00")
    began = time.perf_counter()
    incremental = sync_run(connection_id=connection.pk).run
    incremental_s = time.perf_counter() - began
    fake.stop()

    webhooks = webhooks_phase(connection, secret, size)

    result = {
        "mode": mode,
        "database": db.vendor,
        "initial_status": initial.status,
        "initial_records": initial.records,
        "expected_initial": expected_initial,
        "initial_s": initial_s,
        "initial_cpu_s": initial_cpu_s,
        "load": load,
        "incremental_status": incremental.status,
        "incremental_records": incremental.records,
        "expected_incremental": 3 * changes,
        "incremental_s": incremental_s,
        "pages": initial.pages + incremental.pages,
        "webhooks": size["webhooks"],
        **webhooks,
    }
    _clear(db, agency, (SyncRun, WebhookEvent, Purchase, Message, Conversation, Fan, OutboxEvent))
    return result


def webhooks_phase(connection, secret: str, size: dict) -> dict:
    """Signed ``messages.received`` webhooks posted to the endpoint one after another (timed:
    verified and stored), then the processing they queued, run here (untimed against the target)."""
    from django.test import Client

    from apps.integrations.models import WebhookEvent

    client = Client()
    url = f"/integrations/webhooks/onlyfans/{connection.public_id}/"
    bodies = []
    for n in range(size["webhooks"]):
        fan = f"fan-{n % size['fans'] + 1}"
        data = {"fan": {"id": fan, "username": fan}, "message": {"id": f"wh-{n}", "text": f"webhook {n}"}}
        bodies.append(json.dumps({"id": f"evt-{n}", "type": "messages.received", "data": data}).encode())
    # A server that has answered before: its URLconf, views and Celery producer are loaded (the
    # first request of a process imports them, ~3 s here). An event of an unknown type: ignored.
    bodies.insert(0, json.dumps({"id": "evt-warm-up", "type": "bench.warm_up", "data": {}}).encode())
    accepted = 0
    began, cpu = time.perf_counter(), time.process_time()
    for n, body in enumerate(bodies):
        if n == 1:
            began, cpu = time.perf_counter(), time.process_time()
        timestamp = str(int(time.time()))
        signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        response = client.post(url, body, content_type="application/json", HTTP_X_WEBHOOK_TIMESTAMP=timestamp,
                               HTTP_X_WEBHOOK_SIGNATURE=f"sha256={signature}")  # fmt: skip
        accepted += n > 0 and response.status_code == 200 and response.json().get("status") == "pending"
    webhooks_s, webhooks_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    # Then what a worker does with the tasks the endpoint queued (here: in this process, untimed).
    from apps.integrations.webhooks import webhook_process

    pending = WebhookEvent.objects.filter(connection=connection, status="pending").values_list("pk", flat=True)
    began = time.perf_counter()
    applied = sum(webhook_process(event_id=pk) == "processed" for pk in list(pending))
    applied_s = time.perf_counter() - began

    # The CPU time of this process (client and server in one) says what a request costs on a
    # shared machine whose load stretches the wall time.
    return {"webhooks_accepted": accepted, "webhooks_s": webhooks_s, "webhooks_cpu_s": webhooks_cpu_s,
            "webhooks_applied": applied, "webhooks_applied_s": applied_s}  # fmt: skip


def _clear(db, agency, models) -> None:
    """Delete the bench's rows table by table in one statement each: the ORM's cascade collector
    binds one variable per row and SQLite refuses 600,000 of them."""
    with db.cursor() as cursor:
        for model in models:
            table = db.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE agency_id = %s", [agency.pk])
        if db.vendor == "postgresql":  # "an empty database": not one full of the last run's dead rows
            for model in models:
                cursor.execute(f"VACUUM ANALYZE {db.ops.quote_name(model._meta.db_table)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 fans instead of 100,000 (well under 60 s)")
    parser.add_argument(
        "--fans", type=int, default=None, help="another size: N fans, 5 messages each, a transaction per 10 fans"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    size = QUICK if args.quick else FULL
    if args.fans:
        if args.fans < 10:
            parser.error("--fans must be at least 10")
        size = {**size, "fans": args.fans, "transactions": args.fans // 10}
    r = run(size)
    records_per_s = r["initial_records"] / r["initial_s"] if r["initial_s"] else 0.0
    webhooks_per_s = r["webhooks_accepted"] / r["webhooks_s"] if r["webhooks_s"] else 0.0
    messages = size["fans"] * size["messages_per_fan"]
    transactions = r["expected_initial"] - size["fans"] - messages
    print(
        f"bench/sync.py on {r['database']}: {size['fans']:,} fans, {messages:,} messages, {transactions:,} transactions"
    )
    print(
        f"  initial sync      {r['initial_records']:>9,} records in {r['initial_s']:7.2f} s  "
        f"(CPU of this process {r['initial_cpu_s']:.1f} s, load average {r['load'][0]:.1f} → {r['load'][1]:.1f})"
    )
    print(f"                    {'':>9} "
          f"{records_per_s:8,.0f} records/s (target >= {MIN_RECORDS_PER_S:,})")  # fmt: skip
    print(f"  incremental (1%)  {r['incremental_records']:>9,} records in {r['incremental_s']:7.2f} s  "
          f"(target <= {MAX_INCREMENTAL_S:g} s)")  # fmt: skip
    print(f"  webhooks          {r['webhooks_accepted']:>9,} verified and stored in {r['webhooks_s']:7.2f} s  "
          f"{webhooks_per_s:8,.0f} /s (target >= {MIN_WEBHOOKS_PER_S:,})")  # fmt: skip
    print(f"                    {'':>9} CPU of this process {r['webhooks_cpu_s']:.2f} s: "
          f"{r['webhooks_accepted'] / max(r['webhooks_cpu_s'], 1e-9):,.0f} per CPU second")  # fmt: skip
    print(f"  webhook tasks     {r['webhooks_applied']:>9,} applied in {r['webhooks_applied_s']:7.2f} s "
          "(after the responses)")  # fmt: skip
    failures = []
    if r["initial_status"] != "succeeded" or r["initial_records"] != r["expected_initial"]:
        failures.append(
            f"initial sync {r['initial_status']} with {r['initial_records']:,} of {r['expected_initial']:,}"
        )
    if r["incremental_status"] != "succeeded" or r["incremental_records"] != r["expected_incremental"]:
        failures.append(f"incremental sync took {r['incremental_records']:,}, not {r['expected_incremental']:,}")
    if records_per_s < MIN_RECORDS_PER_S:
        failures.append(f"initial sync {records_per_s:,.0f} records/s < {MIN_RECORDS_PER_S:,}")
    if r["incremental_s"] > MAX_INCREMENTAL_S:
        failures.append(f"incremental sync {r['incremental_s']:.2f} s > {MAX_INCREMENTAL_S:g} s")
    if webhooks_per_s < MIN_WEBHOOKS_PER_S or r["webhooks_accepted"] != r["webhooks"]:
        failures.append(f"webhooks {webhooks_per_s:,.0f}/s ({r['webhooks_accepted']:,} stored) < {MIN_WEBHOOKS_PER_S}")
    if r["webhooks_applied"] != r["webhooks"]:
        failures.append(f"only {r['webhooks_applied']:,} of {r['webhooks']:,} stored webhooks were applied")
    if size == FULL and r["initial_s"] > MAX_INITIAL_FULL_S:
        failures.append(
            f"initial sync {r['initial_s']:.0f} s > {MAX_INITIAL_FULL_S:g} s (the issue's full-size target)"
        )
    for failure in failures:
        print(f"MISSED  {failure}")
    if not failures:
        print("pass    sync targets met")
    out = {
        "initial_sync_s": round(r["initial_s"], 2),
        "initial_sync_cpu_s": round(r["initial_cpu_s"], 2),
        "incremental_sync_s": round(r["incremental_s"], 2),
        "webhooks_per_s": round(webhooks_per_s),
        "webhooks_cpu_s": round(r["webhooks_cpu_s"], 2),
        "records_per_s": round(records_per_s),
        "records": r["initial_records"],
        "webhooks_applied_per_s": round(r["webhooks_applied"] / max(r["webhooks_applied_s"], 1e-9)),
        "_meta": {
            "mode": r["mode"], "database": r["database"], "quick": args.quick, "fans": size["fans"],
            "pages": r["pages"],
            "seconds": round(time.monotonic() - began, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        },
    }  # fmt: skip
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
