"""The initial sync at volume: pages applied through messaging's bulk ingest and the bus's
``publish_many``, whose events are dispatched after each page commits and reach a CRM once per
fan, with the CRM connections read once per dispatch batch rather than once per event."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.events import EventError, NewEvent, publish_many
from apps.core.models import OutboxEvent
from apps.integrations import crm as crm_services
from apps.integrations import services
from apps.integrations.models import CRMDelivery
from apps.integrations.sync import sync_run
from apps.messaging.models import Conversation, Fan, Message, Purchase

pytestmark = pytest.mark.django_db

FANS, MESSAGES_PER_FAN, PAGE = 30, 3, 10


@pytest.fixture
def api(api_server, settings):
    settings.INTEGRATIONS_API_LOOPBACK_ONLY = True
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = True
    settings.INTEGRATIONS_SYNC_PAGE_SIZE = PAGE
    api_server.reset()
    api_server.seed(
        api_server.account("acct-1", "key-1"), fans=FANS, messages_per_fan=MESSAGES_PER_FAN, transactions_per_fan=1
    )
    yield api_server
    api_server.reset()


@pytest.fixture
def live(api, world):
    connection_, _ = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url=api.base_url, api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    return connection_


@pytest.fixture
def fake_crm(crm_server, settings, world):
    crm_server.reset()
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = True
    _crm, secret = crm_services.crm_create(
        membership=world.owner, name="HubCRM", target_url=crm_server.url, event_kinds=["fan.created"],
        field_mapping={"id": "external_id", "username": "handle"},
    )  # fmt: skip
    crm_server.reset(secret=secret)
    return crm_server


def test_a_first_sync_reaches_the_crm_once_per_fan_reading_its_connections_once_per_batch(
    live, api, world, fake_crm, eager_celery, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        run = sync_run(connection_id=live.pk).run
    assert run.status == "succeeded"
    assert (run.fans_synced, run.messages_synced, run.transactions_synced) == (FANS, FANS * MESSAGES_PER_FAN, FANS)

    fans = dict(Fan.objects.filter(creator=world.creator).values_list("pk", "username"))
    received = [event for event in fake_crm.state.received if event["type"] == "fan.created"]
    assert sorted(event["data"]["fan"]["external_id"] for event in received) == sorted(fans)
    assert {event["data"]["fan"]["handle"] for event in received} == set(fans.values())
    assert CRMDelivery.objects.filter(status="delivered").count() == FANS
    # Every event of the run went out: nothing is left for the sweep.
    assert not OutboxEvent.objects.filter(agency_id=world.agency.pk, dispatched_at__isnull=True).exists()

    crm_reads = [q for q in queries.captured_queries if 'FROM "integrations_crmconnection"' in q["sql"]]
    pages_with_crm_events = FANS // PAGE + FANS // PAGE  # fan.created and purchase.recorded pages
    # One read per dispatch batch (a page's events), not one per event: 60 events here.
    assert len(crm_reads) <= pages_with_crm_events < 2 * FANS


def test_the_bulk_pages_store_what_the_feed_holds(live, api, world):
    run = sync_run(connection_id=live.pk).run
    assert run.status == "succeeded"
    assert Fan.objects.filter(creator=world.creator).count() == FANS
    assert Message.objects.filter(creator=world.creator, direction="in").count() == FANS * MESSAGES_PER_FAN
    assert Purchase.objects.filter(creator=world.creator).count() == FANS
    conversation = Conversation.objects.get(fan__platform_fan_id="fan-7", creator=world.creator)
    assert (conversation.unread_count, conversation.message_count, conversation.needs_reply) == (3, 3, True)
    assert conversation.last_message_preview == "hello 2 from fan 7"
    fan = Fan.objects.get(platform_fan_id="fan-7", creator=world.creator)
    assert (fan.username, fan.display_name, fan.subscription_state, fan.custom_fields) == (
        "fan7",
        "Fan 7",
        "active",
        {},
    )
    assert fan.total_spent == 5 and fan.created_at is not None and fan.updated_at is not None
    # the stored rows read back through the ORM like any other (the bulk INSERTs are hand-written)
    message = Message.objects.filter(fan=fan).order_by("created_at").first()
    assert message.text == "hello 0 from fan 7" and message.sent_at == message.created_at
    assert (message.source, message.status, message.sent_by_email, message.error) == ("fan", "received", "", "")


def test_publish_many_refuses_a_bad_event_and_writes_none(world):
    good = NewEvent("fan.created", world.agency.pk, {"fan_id": 1})
    before = OutboxEvent.objects.count()
    for bad in (
        NewEvent("Fan Created", world.agency.pk, {}),
        NewEvent("fan.created", world.agency.pk, {"when": object()}),
        NewEvent("fan.created", world.agency.pk, {}, groups="inbox.agency.1"),
        NewEvent("fan.created", world.agency.pk, {}, groups=["no spaces allowed"]),
        NewEvent("fan.created", True, {}),
    ):
        with pytest.raises(EventError):
            publish_many([good, bad])
    assert OutboxEvent.objects.count() == before


def test_publish_many_dispatches_its_events_after_commit(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        saved = publish_many(
            [NewEvent("fan.created", world.agency.pk, {"fan_id": n}, groups=["inbox.agency.1"]) for n in range(3)]
        )
    assert [event.payload["fan_id"] for event in saved] == [0, 1, 2] and all(event.pk for event in saved)
    assert len(callbacks) == 1  # one kick for them all
    assert OutboxEvent.objects.filter(pk__in=[e.pk for e in saved], dispatched_at__isnull=True).count() == 3
    callbacks[0]()
    assert OutboxEvent.objects.filter(pk__in=[e.pk for e in saved], dispatched_at__isnull=False).count() == 3
