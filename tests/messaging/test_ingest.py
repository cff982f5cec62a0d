"""Bulk ingest (apps/messaging/ingest.py): a page applied in bulk leaves exactly the rows the
per-record services leave, in a fixed number of queries, with one event per fan or purchase and
one inbox change per conversation (not per message), and a re-run changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.messaging import ingest, services
from apps.messaging.models import Conversation, Fan, Message, Purchase

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=3)

FANS = {
    "f1": {"username": "alice", "display_name": "Alice", "subscription_state": "active", "renew_on": False},
    "f2": {"username": "bob", "subscribed_since": T0 - timedelta(days=30)},
    "f3": {"username": "carol", "subscription_state": "expired", "subscription_expires_at": T0},
    "old": {"username": "renamed", "display_name": "Now Renamed"},  # exists already: an update
}
MESSAGES = [  # interleaved fans, a redelivery inside the page, an older wait on "old"
    ingest.InboundMessage("f1", "hey you", "m1", T0 + timedelta(minutes=1)),
    ingest.InboundMessage("f2", "", "m2", T0 + timedelta(minutes=2), media_count=2),
    ingest.InboundMessage("f1", "still   there?\nhello", "m3", T0 + timedelta(minutes=3)),
    ingest.InboundMessage("f1", "hey you", "m1", T0 + timedelta(minutes=1)),
    ingest.InboundMessage("old", "back again", "m4", T0 + timedelta(minutes=4)),
    ingest.InboundMessage("f2", "later but listed first?", "m5", T0 + timedelta(minutes=1)),
    ingest.InboundMessage("nobody", "a fan not synced yet", "m6", T0),
]
PURCHASES = [
    ingest.PurchaseIn("f1", "tip", Decimal("7.50"), "tip:1", T0 + timedelta(hours=2)),
    ingest.PurchaseIn("f1", "subscription", Decimal("9.99"), "sub:1", T0 + timedelta(hours=1)),
    ingest.PurchaseIn("f1", "tip", Decimal("7.50"), "tip:1", T0 + timedelta(hours=2)),  # redelivered
    ingest.PurchaseIn("f3", "ppv", Decimal("15.00"), "ppv:9", T0 + timedelta(hours=3), currency="EUR"),
    ingest.PurchaseIn("old", "message", Decimal("3.00"), "message:4", T0 - timedelta(days=9)),
]
SKIP = {"id", "agency", "creator", "created_at", "updated_at"}
FAN_COLUMNS = [f.name for f in Fan._meta.concrete_fields if f.name not in SKIP]


def _seed_old_fan(creator):
    """A fan known before the page, waiting for a reply since an earlier message and with spend."""
    fan, _ = services.fan_upsert(creator=creator, platform="onlyfans", platform_fan_id="old", username="old")
    services.message_receive(fan=fan, text="first", platform_message_id="m0", at=T0 - timedelta(days=1))
    services.purchase_record(fan=fan, kind="tip", amount=Decimal("5"), platform_purchase_id="tip:0", at=T0)


def _per_record(creator):
    for fan_id, fields in FANS.items():
        services.fan_upsert(creator=creator, platform="onlyfans", platform_fan_id=fan_id, **fields)
    fans = {fan.platform_fan_id: fan for fan in Fan.objects.filter(creator=creator)}
    for m in MESSAGES:
        if m.platform_fan_id in fans:
            services.message_receive(
                fan=fans[m.platform_fan_id], text=m.text, media_count=m.media_count,
                platform_message_id=m.platform_message_id, at=m.at,
            )  # fmt: skip
    for p in PURCHASES:
        services.purchase_record(
            fan=Fan.objects.get(creator=creator, platform_fan_id=p.platform_fan_id), kind=p.kind, amount=p.amount,
            at=p.at, platform_purchase_id=p.platform_purchase_id, currency=p.currency,
        )  # fmt: skip


def _bulk(creator):
    with transaction.atomic():
        ingest.fans_upsert(creator=creator, platform="onlyfans", fans=FANS)
        ingest.messages_receive(creator=creator, platform="onlyfans", messages=MESSAGES)
        ingest.purchases_record(creator=creator, platform="onlyfans", purchases=PURCHASES)


def snapshot(creator) -> dict:
    """Everything a member could see of the creator's fans, threads and money, without row ids."""
    fans = {f["platform_fan_id"]: f for f in Fan.objects.filter(creator=creator).values(*FAN_COLUMNS)}
    conversations = {
        c.pop("fan__platform_fan_id"): c
        for c in Conversation.objects.filter(creator=creator).values(
            "fan__platform_fan_id", "needs_reply", "waiting_since", "unread_count", "fan_value", "last_message_at",
            "last_message_preview", "last_message_direction", "message_count",
        )
    }  # fmt: skip
    messages = sorted(
        Message.objects.filter(creator=creator).values_list(
            "fan__platform_fan_id", "platform_message_id", "text", "media_count", "direction", "source", "status",
            "created_at", "sent_at",
        )
    )  # fmt: skip
    purchases = sorted(
        Purchase.objects.filter(creator=creator).values_list(
            "fan__platform_fan_id", "platform_purchase_id", "kind", "amount", "currency", "purchased_at"
        )
    )
    return {"fans": fans, "conversations": conversations, "messages": messages, "purchases": purchases}


def _events(agency_id, kind, since):
    return list(
        OutboxEvent.objects.filter(agency_id=agency_id, kind=kind, pk__gt=since).values_list("payload", flat=True)
    )


def test_a_bulk_page_leaves_exactly_what_the_per_record_services_leave(world):
    per_record, bulk = world.creator, world.other_creator
    _seed_old_fan(per_record)
    _seed_old_fan(bulk)
    before = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _per_record(per_record)
    since = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _bulk(bulk)

    expected, got = snapshot(per_record), snapshot(bulk)
    assert got == expected
    # spot checks of what the comparison covers, so an empty snapshot cannot pass
    assert got["fans"]["f1"]["total_spent"] == Decimal("17.49") and got["fans"]["f1"]["spent_tips"] == Decimal("7.50")
    assert got["fans"]["f1"]["last_purchase_at"] == T0 + timedelta(hours=2)
    assert got["fans"]["old"]["username"] == "renamed" and got["fans"]["old"]["last_purchase_at"] == T0
    assert got["conversations"]["old"]["waiting_since"] == T0 - timedelta(days=1)  # kept its earlier wait
    assert got["conversations"]["old"]["fan_value"] == Decimal("8.00")
    assert got["conversations"]["f1"]["unread_count"] == 2
    assert got["conversations"]["f1"]["last_message_preview"] == "still there? hello"
    # f2's page lists its newer message first: the thread moves by the messages' times, not the feed's order
    assert got["conversations"]["f2"]["last_message_at"] == T0 + timedelta(minutes=2)
    assert got["conversations"]["f2"]["last_message_preview"] == "📎 media"
    assert got["conversations"]["f2"]["waiting_since"] == T0 + timedelta(minutes=1)
    assert "f3" not in got["conversations"]  # a purchase alone opens no thread
    assert len(got["messages"]) == 6 and len(got["purchases"]) == 5

    agency = world.agency.pk
    created = _events(agency, "fan.created", since)
    assert sorted(p["fan_id"] for p in created) == sorted(
        Fan.objects.filter(creator=bulk, platform_fan_id__in=["f1", "f2", "f3"]).values_list("pk", flat=True)
    )
    recorded = _events(agency, "purchase.recorded", since)
    assert sorted((p["kind"], p["amount"], p["currency"]) for p in recorded) == [
        ("message", "3.00", "USD"), ("ppv", "15.00", "EUR"), ("subscription", "9.99", "USD"), ("tip", "7.50", "USD"),
    ]  # fmt: skip
    changed = _events(agency, "inbox.changed", since)
    conversation_ids = set(Conversation.objects.filter(creator=bulk).values_list("pk", flat=True))
    assert sorted(p["conversation_id"] for p in changed if p["conversation_id"]) == sorted(conversation_ids)
    assert len(changed) == 3 + 3  # one per conversation with new messages, one per fan with new purchases
    # "A fan wrote": the new fan messages, counted per conversation, as the per-record path counts them one by one.
    one_by_one = OutboxEvent.objects.filter(kind="inbox.changed", pk__gt=before, pk__lte=since)
    assert sum(p["received"] for p in changed) == sum(e.payload["received"] for e in one_by_one) == 5


LATE = [  # newest first, as a feed catching up may list them; all written before the reply
    ingest.InboundMessage("late", "third", "l3", T0 + timedelta(minutes=3)),
    ingest.InboundMessage("late", "second, same second", "l2b", T0 + timedelta(minutes=2)),
    ingest.InboundMessage("late", "second", "l2", T0 + timedelta(minutes=2)),
]


def _answered_fan(world, creator):
    """A fan who wrote at T0 and was answered just now."""
    fan, _ = services.fan_upsert(creator=creator, platform="onlyfans", platform_fan_id="late", username="late")
    services.message_receive(fan=fan, text="are you there?", platform_message_id="l0", at=T0)
    conversation = Conversation.objects.get(fan=fan)
    return services.message_send(membership=world.owner, conversation=conversation, text="Here!")


def test_a_page_of_messages_older_than_the_reply_leaves_the_thread_answered(world):
    """A sync catching up on messages the fan wrote before the chatter's reply, in bulk and one
    by one alike: the messages are stored at their times, the reply stays the last message, the
    fan is not waiting and nothing is unread; one inbox change per conversation says so."""
    per_record, bulk = world.creator, world.other_creator
    replies = {per_record: _answered_fan(world, per_record), bulk: _answered_fan(world, bulk)}
    since = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    fan = Fan.objects.get(creator=per_record, platform_fan_id="late")
    for m in LATE:
        services.message_receive(fan=fan, text=m.text, platform_message_id=m.platform_message_id, at=m.at)
    with transaction.atomic():
        assert ingest.messages_receive(creator=bulk, platform="onlyfans", messages=LATE) == 3

    for creator, reply in replies.items():
        conversation = Conversation.objects.get(creator=creator)
        assert (conversation.last_message_direction, conversation.last_message_preview) == ("out", "Here!")
        assert conversation.last_message_at == reply.created_at
        assert (conversation.needs_reply, conversation.waiting_since, conversation.unread_count) == (False, None, 0)
        assert conversation.message_count == 5
        history = Message.objects.filter(conversation=conversation).order_by("created_at", "id")
        assert [m.text for m in history] == ["are you there?", "second, same second", "second", "third", "Here!"]
        assert Fan.objects.get(creator=creator, platform_fan_id="late").last_active_at == T0 + timedelta(minutes=3)
    changed = _events(world.agency.pk, "inbox.changed", since)
    assert sorted((p["creator_id"], p["received"]) for p in changed) == sorted(
        [(per_record.pk, 1)] * 3 + [(bulk.pk, 3)]
    )


def test_a_late_page_no_reply_came_after_makes_the_fan_wait_since_its_earliest_message(world):
    """Messages older than the thread's last one but after the last reply (the last message is a
    campaign's, which answers no one) make the fan wait since the earliest; the last stays."""
    for creator in (world.creator, world.other_creator):
        reply = _answered_fan(world, creator)
        services.messages_record_sent(
            agency_id=world.agency.pk, creator_id=creator.pk, campaign_id=None,
            sent=[services.SentElsewhere(
                platform="onlyfans", recipient_id="late", text="New set tonight!", ppv_price=None, media_count=0,
                idempotency_key=f"c-{creator.pk}", platform_message_id="",
                sent_at=reply.created_at + timedelta(hours=1),
            )],
        )  # fmt: skip
        after = [
            ingest.InboundMessage("late", "you there?", f"a2-{creator.pk}", reply.created_at + timedelta(minutes=20)),
            ingest.InboundMessage("late", "hello", f"a1-{creator.pk}", reply.created_at + timedelta(minutes=10)),
        ]
        with transaction.atomic():
            ingest.messages_receive(creator=creator, platform="onlyfans", messages=[*LATE, *after])
        conversation = Conversation.objects.get(creator=creator)
        assert (conversation.last_message_direction, conversation.last_message_preview) == ("out", "New set tonight!")
        assert conversation.needs_reply and conversation.waiting_since == reply.created_at + timedelta(minutes=10)
        assert (conversation.unread_count, conversation.message_count) == (2, 8)


def test_a_rerun_of_the_same_page_changes_nothing(world):
    creator = world.creator
    _seed_old_fan(creator)
    _bulk(creator)
    before = snapshot(creator)
    since = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    updated = dict(Fan.objects.filter(creator=creator).values_list("platform_fan_id", "updated_at"))
    _bulk(creator)
    assert snapshot(creator) == before
    assert dict(Fan.objects.filter(creator=creator).values_list("platform_fan_id", "updated_at")) == updated
    assert not OutboxEvent.objects.filter(pk__gt=since).exists()


def test_a_page_costs_the_same_queries_whatever_its_size(world):
    """The same reads for a page of 10 fans as for one of 200; the writes grow only by the
    batches the backend splits them into (SQLite binds at most 999 parameters a statement),
    not by a statement per record."""

    def page(creator, size) -> list[str]:
        fans = {f"fan-{n}": {"username": f"fan{n}"} for n in range(size)}
        messages = [ingest.InboundMessage(f"fan-{n % size}", f"hi {n}", f"m-{n}", T0) for n in range(size * 5)]
        purchases = [ingest.PurchaseIn(f"fan-{n}", "tip", Decimal("2"), f"tip:{n}", T0) for n in range(size)]
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            ingest.fans_upsert(creator=creator, platform="onlyfans", fans=fans)
            ingest.messages_receive(creator=creator, platform="onlyfans", messages=messages)
            ingest.purchases_record(creator=creator, platform="onlyfans", purchases=purchases)
        return [q["sql"].split()[0] for q in queries.captured_queries]

    small, large = page(world.creator, 10), page(world.other_creator, 200)
    assert large.count("SELECT") == small.count("SELECT") <= 10
    assert len(large) <= 80  # 1,400 records; the per-record services take about 5 statements each
    assert Message.objects.filter(creator=world.other_creator).count() == 1000
    assert Conversation.objects.get(fan__platform_fan_id="fan-7", creator=world.other_creator).unread_count == 5
    assert Fan.objects.get(platform_fan_id="fan-7", creator=world.other_creator).total_spent == Decimal("2")


def test_bulk_events_are_dispatched_after_commit(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ingest.fans_upsert(creator=world.creator, platform="onlyfans", fans={"f9": {"username": "nine"}})
    event = OutboxEvent.objects.get(agency_id=world.agency.pk, kind="fan.created")
    assert event.dispatched_at is not None


def test_an_unknown_purchase_kind_is_refused_and_nothing_is_stored(world):
    with pytest.raises(ValueError), transaction.atomic():
        ingest.fans_upsert(creator=world.creator, platform="onlyfans", fans={"f1": {"username": "a"}})
        ingest.purchases_record(
            creator=world.creator, platform="onlyfans",
            purchases=[ingest.PurchaseIn("f1", "bribe", Decimal("1"), "x:1", T0)],
        )  # fmt: skip
    assert not Fan.objects.filter(creator=world.creator).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: ANALYZE and pg_class's row estimate")
def test_refreshed_statistics_show_postgresql_how_large_a_synced_table_has_grown(world):
    """A first sync fills empty tables; until they are analysed the planner takes them for empty
    and scans them whole for each lookup (bench/sync.py: most of a full sync's time). Tables whose
    statistics already count what the load wrote are left alone."""

    def receive(first, count):
        messages = [ingest.InboundMessage(f"fan-{n % 300}", f"hi {n}", f"m-{n}", T0) for n in range(first, count)]
        ingest.messages_receive(creator=world.creator, platform="onlyfans", messages=messages)

    def estimate():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s)",
                [Message._meta.db_table, Conversation._meta.db_table],
            )
            rows = dict(cursor.fetchall())
        return rows[Message._meta.db_table], rows[Conversation._meta.db_table]

    fans = {f"fan-{n}": {"username": f"fan{n}"} for n in range(300)}
    with transaction.atomic():
        ingest.fans_upsert(creator=world.creator, platform="onlyfans", fans=fans)
        receive(0, 1500)
        ingest.refresh_statistics(1500)
        messages, conversations = estimate()
        assert messages >= 1500
        assert conversations >= 300

        receive(1500, 2500)
        ingest.refresh_statistics(1000)  # the statistics already count 1,500: not analysed again
        assert estimate()[0] == messages
        ingest.refresh_statistics(2500)
        assert estimate()[0] >= 2500


def test_a_bulk_write_that_meets_a_fan_written_meanwhile_raises_the_error_the_page_recovers_from(world):
    """``fans_upsert`` takes a page one fan at a time when its bulk write meets a fan a webhook
    created since the page's read: that write must fail as Django's IntegrityError on both
    backends (PostgreSQL's COPY included), inside a savepoint that leaves the transaction usable."""
    services.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="dup", username="first")
    row = (world.agency.pk, world.creator.pk, "onlyfans", "dup", "second")
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            ingest._insert_rows(Fan, ("agency_id", "creator_id", "platform", "platform_fan_id", "username"), [row])
        assert Fan.objects.get(creator=world.creator, platform_fan_id="dup").username == "first"
