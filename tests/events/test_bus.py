"""The event bus: publish in the caller's transaction, dispatch to Channels groups and subscribers."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from apps.core import events, outbox
from apps.core.models import OutboxEvent


@pytest.fixture
def listener():
    """A channel of the real channel layer (in memory, or Redis with REDIS_URL) in one group,
    read on an event loop of its own (a channel's receive queue belongs to one loop)."""
    layer = get_channel_layer()
    loop = asyncio.new_event_loop()
    channel = loop.run_until_complete(layer.new_channel())
    group = f"test.events.{uuid.uuid4().hex[:12]}"
    loop.run_until_complete(layer.group_add(group, channel))

    def receive_all(timeout: float = 1.0) -> list[dict]:
        async def _drain():
            received = []
            while True:
                try:
                    received.append(await asyncio.wait_for(layer.receive(channel), timeout))
                except TimeoutError:
                    return received

        return loop.run_until_complete(_drain())

    yield group, receive_all
    loop.run_until_complete(layer.group_discard(group, channel))
    loop.close()


@pytest.fixture
def recorded():
    seen: list[int] = []

    def handler(event):
        seen.append(event.pk)

    events.subscribe("test.", handler)
    yield seen
    events.unsubscribe("test.", handler)


def test_nothing_leaves_before_the_commit(db, listener, recorded, django_capture_on_commit_callbacks):
    group, receive_all = listener
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = events.publish("test.happened", agency_id=7, payload={"n": 1}, groups=[group])
    assert OutboxEvent.objects.get(pk=event.pk).dispatched_at is None
    assert receive_all(timeout=0.2) == [] and recorded == []
    for callback in callbacks:  # the commit
        callback()
    assert [m["id"] for m in receive_all()] == [event.pk] and recorded == [event.pk]


def test_dispatch_after_commit_sends_each_event_once(db, listener, recorded, django_capture_on_commit_callbacks):
    group, receive_all = listener
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = events.publish("test.happened", agency_id=7, payload={"n": 1}, groups=[group])
        second = events.publish("test.other", agency_id=7, payload={"n": 2}, groups=[group])
    assert len(callbacks) == 2
    messages = receive_all()
    assert [(m["id"], m["kind"], m["payload"]) for m in messages] == [
        (first.pk, "test.happened", {"n": 1}),
        (second.pk, "test.other", {"n": 2}),
    ]
    assert messages[0]["type"] == "outbox.event" and messages[0]["agency_id"] == 7
    assert recorded == [first.pk, second.pk]
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 0
    # A later sweep finds nothing left to send.
    assert outbox.dispatch_pending().claimed == 0
    assert receive_all(timeout=0.2) == [] and recorded == [first.pk, second.pk]


def test_a_rolled_back_transaction_publishes_nothing(transactional_db, listener, recorded):
    group, receive_all = listener
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish("test.happened", agency_id=7, payload={}, groups=[group])
        raise RuntimeError("the change failed")
    assert OutboxEvent.objects.count() == 0
    assert receive_all(timeout=0.2) == [] and recorded == []


def test_publish_in_autocommit_dispatches_at_once(transactional_db, listener, recorded):
    group, receive_all = listener
    event = events.publish("test.happened", agency_id=None, payload={"a": [1, 2]}, groups=[group])
    assert [m["id"] for m in receive_all()] == [event.pk]
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.attempts == 1


@pytest.fixture
def handing_off(monkeypatch):
    """This process dispatches as a Celery worker process does: on its hand-off thread."""
    monkeypatch.setattr(outbox, "HANDOFF_IDLE_SECONDS", 0.2)  # the thread closes its connection soon after
    monkeypatch.setattr(outbox._handoff, "enabled", True)
    yield outbox._handoff
    assert outbox._handoff.drain(timeout=10)
    time.sleep(0.5)  # the idle thread closes its database connection (0.2 s) before the patch is undone


def _sent_ids(messages: list[dict]) -> list[int]:
    """The event ids a group received, whether one event per message or several in a batch."""
    return [item["id"] for m in messages for item in (m["events"] if m["type"] == "outbox.batch" else [m])]


def _wait_until_dispatched(ids: list[int], timeout: float = 10.0) -> list[OutboxEvent]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(OutboxEvent.objects.filter(pk__in=ids).order_by("id"))
        if all(event.dispatched_at for event in found):
            return found
        time.sleep(0.02)
    return list(OutboxEvent.objects.filter(pk__in=ids).order_by("id"))


def test_a_worker_process_sends_its_committed_events_from_its_hand_off_thread_in_order(
    transactional_db, listener, handing_off
):
    group, receive_all = listener
    senders: list[str] = []

    def handler(event):
        senders.append(threading.current_thread().name)

    events.subscribe("test.", handler)
    try:
        published = []
        for n in range(5):
            with transaction.atomic():
                published.append(events.publish("test.happened", agency_id=7, payload={"n": n}, groups=[group]).pk)
        sent = _wait_until_dispatched(published)
    finally:
        events.unsubscribe("test.", handler)
    assert _sent_ids(receive_all()) == published  # commit order, each once
    assert all(event.dispatched_at and event.attempts == 1 for event in sent)
    assert senders == ["outbox-handoff"] * 5  # not the publisher's thread: its commit did not wait


def test_a_hand_off_queue_that_is_full_makes_the_publisher_send_itself(
    transactional_db, listener, handing_off, monkeypatch
):
    group, receive_all = listener
    senders: list[tuple[int, str]] = []

    def handler(event):
        senders.append((event.pk, threading.current_thread().name))

    events.subscribe("test.", handler)
    try:
        monkeypatch.setattr(outbox, "HANDOFF_LIMIT", 0)
        full = events.publish("test.happened", agency_id=7, payload={}, groups=[group])
        # Sent before publish returned (autocommit: the commit and its kick are synchronous).
        assert senders == [(full.pk, threading.current_thread().name)]
        assert OutboxEvent.objects.get(pk=full.pk).dispatched_at is not None
        monkeypatch.setattr(outbox, "HANDOFF_LIMIT", 10)
        room = events.publish("test.happened", agency_id=7, payload={}, groups=[group])
        _wait_until_dispatched([room.pk])
    finally:
        events.unsubscribe("test.", handler)
    assert senders[1:] == [(room.pk, "outbox-handoff")]  # with room again, the thread sends it
    assert _sent_ids(receive_all()) == [full.pk, room.pk]


def test_a_steady_stream_of_events_goes_out_in_batches_and_a_lone_one_at_once(
    transactional_db, listener, handing_off, monkeypatch
):
    """Events that reach the hand-off thread within HANDOFF_LINGER_SECONDS of its previous batch
    wait for the linger and go out together: one group send and one dispatched mark for all of
    them. An event after a quiet spell is not held back."""
    monkeypatch.setattr(outbox, "HANDOFF_LINGER_SECONDS", 3.0)
    group, receive_all = listener
    time.sleep(3.1)  # quiet: any batch of an earlier test is more than a linger ago
    started = time.monotonic()
    lone = events.publish("test.happened", agency_id=7, payload={"n": 0}, groups=[group])
    (lone,) = _wait_until_dispatched([lone.pk])
    assert time.monotonic() - started < 1.5  # sent at once, not after the linger
    stream = [events.publish("test.happened", agency_id=7, payload={"n": n}, groups=[group]).pk for n in range(1, 5)]
    sent = _wait_until_dispatched(stream)
    messages = receive_all()
    assert _sent_ids(messages) == [lone.pk, *stream]
    assert len(messages) == 2 and messages[1]["type"] == "outbox.batch"  # the four in one send
    assert len({event.dispatched_at for event in sent}) == 1  # and one mark
    assert (sent[0].dispatched_at - lone.dispatched_at).total_seconds() >= 1.5  # held for the linger (3 s)


def test_a_clean_stop_waits_until_the_hand_off_thread_has_sent_what_it_holds(transactional_db, handing_off):
    def slow(event):
        time.sleep(0.3)  # a subscriber that takes its time: the thread is still busy at the stop

    events.subscribe("test.slow", slow)
    try:
        published = [events.publish("test.slow", agency_id=7, payload={"n": n}).pk for n in range(3)]
        assert outbox._handoff.drain(timeout=10)  # what at_shutdown calls when the worker stops
    finally:
        events.unsubscribe("test.slow", slow)
    assert not OutboxEvent.objects.filter(pk__in=published, dispatched_at__isnull=True).exists()


def test_events_sent_together_are_marked_together_and_a_failed_one_waits_for_the_sweep(
    transactional_db, listener, monkeypatch
):
    group, receive_all = listener
    # Committed, not yet sent (written as publish writes them, without its on-commit kick).
    first, broken, last = (
        OutboxEvent.objects.create(kind=kind, agency_id=7, payload={}, groups=[group])
        for kind in ("test.a", "test.broken", "test.c")
    )

    def refuse(event):
        raise RuntimeError("subscriber down")

    events.subscribe("test.broken", refuse)
    try:
        report = outbox.dispatch_copies([first, broken, last])
    finally:
        events.unsubscribe("test.broken", refuse)
    assert (report.dispatched, report.failed, report.dispatched_ids) == (2, 1, [first.pk, last.pk])
    rows = {event.pk: event for event in OutboxEvent.objects.filter(pk__in=[first.pk, broken.pk, last.pk])}
    assert rows[first.pk].dispatched_at and rows[last.pk].dispatched_at
    assert rows[broken.pk].dispatched_at is None and "subscriber down" in rows[broken.pk].last_error
    assert rows[broken.pk].claimed_until > timezone.now()  # backed off: the sweep takes it later
    assert _sent_ids(receive_all()) == [first.pk, broken.pk, last.pk]  # one send each, in order


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "NoDots"}, "dotted lower-case"),
        ({"kind": "test.x", "payload": ["not", "a", "dict"]}, "JSON object"),
        ({"kind": "test.x", "payload": {"when": timezone.now()}}, "must be JSON"),
        ({"kind": "test.x", "payload": {"x": float("nan")}}, "must be JSON"),
        ({"kind": "test.x", "payload": {"x": "y" * 70_000}}, "at most"),
        ({"kind": "test.x", "groups": "user.1"}, "not one string"),
        ({"kind": "test.x", "groups": ["bad group!"]}, "group names"),
        ({"kind": "test.x", "key": ""}, "1 to 200"),
        ({"kind": "test.x", "agency_id": "7"}, "integer"),
    ],
)
def test_bad_publish_calls_are_refused_with_a_clear_error(db, kwargs, message):
    arguments = {"agency_id": 1, "payload": {}, **kwargs}
    kind = arguments.pop("kind")
    with pytest.raises(events.EventError, match=message):
        events.publish(kind, **arguments)
    assert OutboxEvent.objects.count() == 0


def test_a_key_makes_publishing_idempotent(db):
    first = events.publish("test.happened", agency_id=1, payload={"n": 1}, key="order:1")
    again = events.publish("test.happened", agency_id=1, payload={"n": 2}, key="order:1")
    assert again.pk == first.pk and OutboxEvent.objects.count() == 1
    other_kind = events.publish("test.other", agency_id=1, payload={}, key="order:1")
    assert other_kind.pk != first.pk


def test_a_repeated_key_inside_a_transaction_leaves_it_usable(db, django_capture_on_commit_callbacks):
    """Publishing a key that is taken writes nothing and breaks nothing: the caller's transaction
    goes on (PostgreSQL aborts a transaction at a failed INSERT) and only the first is dispatched."""
    with django_capture_on_commit_callbacks() as kicks, transaction.atomic():
        first = events.publish("test.happened", agency_id=1, payload={"n": 1}, key="order:7")
        again = events.publish("test.happened", agency_id=1, payload={"n": 2}, key="order:7")
        later = events.publish("test.happened", agency_id=1, payload={"n": 3})
    assert again.pk == first.pk and again.payload == {"n": 1}
    assert list(OutboxEvent.objects.order_by("id").values_list("payload", flat=True)) == [{"n": 1}, {"n": 3}]
    assert later.pk > first.pk and len(kicks) == 2


def test_a_failing_subscriber_is_recorded_and_retried_after_backoff(db, listener):
    group, receive_all = listener
    calls: list[int] = []

    def flaky(event):
        calls.append(event.pk)
        if len(calls) == 1:
            raise ConnectionError("webhook endpoint down")

    events.subscribe("test.flaky", flaky)
    try:
        event = events.publish("test.flaky", agency_id=3, payload={}, groups=[group])
        report = outbox.dispatch_pending()
        assert (report.claimed, report.dispatched, report.failed) == (1, 0, 1)
        event.refresh_from_db()
        assert event.dispatched_at is None and event.attempts == 1
        assert "ConnectionError: webhook endpoint down" in event.last_error
        assert event.claimed_until > timezone.now()  # backing off
        assert outbox.outbox_status(agency_id=3).failing == 1
        assert outbox.dispatch_pending().claimed == 0  # not before the backoff ends
        OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
        assert outbox.dispatch_pending().dispatched == 1
        event.refresh_from_db()
        assert event.dispatched_at is not None and event.attempts == 2 and event.last_error == ""
        assert calls == [event.pk, event.pk]
        # The group got it on both attempts: consumers drop the id they have seen.
        assert [m["id"] for m in receive_all()] == [event.pk, event.pk]
    finally:
        events.unsubscribe("test.flaky", flaky)


def test_a_claim_is_a_lease_that_expires(db):
    event = events.publish("test.happened", agency_id=1, payload={})
    claimed = outbox.claim()
    assert [e.pk for e in claimed] == [event.pk]
    assert outbox.claim() == []  # another dispatcher cannot take it while the lease runs
    OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert [e.pk for e in outbox.claim()] == [event.pk]  # the first dispatcher died: claimable again
    assert OutboxEvent.objects.get(pk=event.pk).attempts == 2


def test_claims_go_in_id_order_and_in_batches(db, settings):
    settings.EVENTS_BATCH_SIZE = 3
    ids = [events.publish("test.happened", agency_id=1, payload={"i": i}).pk for i in range(7)]
    assert [e.pk for e in outbox.claim()] == ids[:3]
    report = outbox.dispatch_pending()
    assert (report.claimed, report.dispatched) == (4, 4)
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 3  # the first claim's lease


def test_dispatched_events_are_purged_after_the_retention(db, settings):
    settings.EVENTS_RETENTION_DAYS = 7
    old = events.publish("test.happened", agency_id=1, payload={})
    recent = events.publish("test.happened", agency_id=1, payload={})
    waiting = events.publish("test.happened", agency_id=1, payload={})
    outbox.dispatch_batch(ids=[old.pk, recent.pk])
    OutboxEvent.objects.filter(pk=old.pk).update(dispatched_at=timezone.now() - timedelta(days=8))
    OutboxEvent.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=30))
    assert outbox.purge_dispatched() == 1
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}  # undispatched kept


def test_lag_is_the_age_of_the_oldest_waiting_event_of_the_agency(db):
    assert outbox.outbox_status(agency_id=1).lag_seconds == 0
    event = events.publish("test.happened", agency_id=1, payload={})
    events.publish("test.happened", agency_id=2, payload={})
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    status = outbox.outbox_status(agency_id=1)
    assert status.pending == 1 and 89 < status.lag_seconds < 100
    assert outbox.outbox_status(all_agencies=True).pending == 2
