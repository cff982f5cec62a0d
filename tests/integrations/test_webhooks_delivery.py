"""Inbound webhooks end to end and under races: a burst through daphne applied by a real worker
with a few coalesced drains, and two deliveries of the same message or payment racing in the
database (the second must change nothing)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.db import transaction

from apps.integrations import services
from apps.integrations.models import WebhookEvent
from apps.messaging import services as messaging
from apps.messaging.models import Conversation, Fan, Message, Purchase
from tests.conftest import build_world
from tests.processes import celery_worker_args, daphne_args, free_port, running, wait_for_http

BURST = 40


def signed_request(url: str, secret: str, event: dict) -> urllib.request.Request:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Webhook-Timestamp": timestamp,
               "X-Webhook-Signature": f"sha256={signature}"}  # fmt: skip
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


@pytest.mark.worker
def test_a_burst_through_daphne_is_stored_at_once_and_applied_by_a_worker_in_a_few_drains(transactional_db):
    world = build_world("Burst")
    connection, secret = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url="https://api.example-of-api.com/v1", api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    port = free_port()
    with running(celery_worker_args()) as worker, running(daphne_args(port)):
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/api/v1/health", timeout=180)  # a busy machine starts slowly
        url = f"{base}/integrations/webhooks/onlyfans/{connection.public_id}/"
        began = time.monotonic()
        for n in range(BURST):
            data = {"fan": {"id": f"fan-{n % 4}"}, "message": {"id": f"msg-{n}", "text": f"hi {n}"}}
            event = {"id": f"evt-{n}", "type": "messages.received", "data": data}
            with urllib.request.urlopen(signed_request(url, secret, event), timeout=30) as answer:
                assert json.loads(answer.read()) == {"id": f"evt-{n}", "status": "pending", "duplicate": False}
                # The short path keeps the security headers and sets no cookie.
                assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["X-Request-ID"]
                assert "Content-Security-Policy" in answer.headers and "Set-Cookie" not in answer.headers
        burst_seconds = time.monotonic() - began
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and WebhookEvent.objects.filter(status="pending").exists():
            time.sleep(0.25)
    assert WebhookEvent.objects.filter(status="processed").count() == BURST, worker.output[-3000:]
    assert Message.objects.filter(creator=world.creator).count() == BURST
    assert sorted(Conversation.objects.values_list("message_count", flat=True)) == [BURST // 4] * 4
    # Not one task per webhook: a drain when the connection's window (1 s) opens and one after it.
    received = [line for line in worker.output.splitlines() if " received" in line]
    drains = sum("apps.integrations.tasks.process_webhooks[" in line for line in received)
    singles = sum("apps.integrations.tasks.process_webhook[" in line for line in received)
    windows = int(burst_seconds) + 1
    assert singles == 0 and 0 < drains <= 2 * windows, (drains, singles, burst_seconds)


# --- Two deliveries of one thing at the same moment ------------------------------------------------


def _hold_until_the_other_waits(started: threading.Event) -> None:
    """Called inside the first writer's open transaction: return once the second writer is
    blocked on it (PostgreSQL: waiting on a lock; SQLite serialises writers, so just a pause)."""
    started.wait(10)
    if db_connection.vendor != "postgresql":
        time.sleep(0.5)
        return
    from django.db import connections

    watcher = connections.create_connection("default")
    try:
        deadline = time.monotonic() + 15
        with watcher.cursor() as cursor:
            while time.monotonic() < deadline:
                waiting = "wait_event_type = 'Lock' AND datname = current_database()"
                cursor.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {waiting}")
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the second delivery never waited on the first")
    finally:
        watcher.close()


def race(first, second):
    """Run ``first`` in a transaction held open until ``second`` (another thread, another
    connection) is writing the same row; answers both results."""
    results, errors, started = {}, [], threading.Event()

    def run(name, action, hold):
        try:
            if hold:
                with transaction.atomic():
                    results[name] = action()
                    _hold_until_the_other_waits(started)
            else:
                started.set()
                results[name] = action()
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=run, args=("first", first, True))]
    threads.append(threading.Thread(target=run, args=("second", second, False)))
    threads[0].start()
    time.sleep(0.2)  # the first has written before the second starts
    threads[1].start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results["first"], results["second"]


@pytest.mark.django_db(transaction=True)
def test_a_message_delivered_twice_at_once_is_stored_once():
    world = build_world("Race")
    fan, _ = messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="fan-1")
    messaging.message_receive(fan=fan, text="earlier", platform_message_id="msg-0")  # the conversation exists

    def deliver():
        return messaging.message_receive(fan=fan, text="hello", platform_message_id="msg-1")

    first, second = race(deliver, deliver)
    assert first.pk == second.pk and Message.objects.filter(fan=fan).count() == 2
    conversation = Conversation.objects.get(fan=fan)
    assert (conversation.message_count, conversation.unread_count) == (2, 2)


@pytest.mark.django_db(transaction=True)
def test_a_payment_delivered_twice_at_once_is_counted_once():
    world = build_world("Race")
    fan, _ = messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="fan-1")

    def deliver():
        return messaging.purchase_record(
            fan=Fan.objects.get(pk=fan.pk), kind="subscription", amount=Decimal("9.99"),
            platform_purchase_id="subscription:t-1",
        )  # fmt: skip

    first, second = race(deliver, deliver)
    assert first.pk == second.pk and Purchase.objects.filter(fan=fan).count() == 1
    fan.refresh_from_db()
    assert fan.total_spent == Decimal("9.99") and fan.spent_subscriptions == Decimal("9.99")
