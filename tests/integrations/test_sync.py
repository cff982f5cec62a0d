"""Incremental sync of a third-party API connection from the loopback fake provider: cursors,
idempotent upserts, resuming an interrupted run, health, the history page, Sync now and beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations import services
from apps.integrations.models import Connection, ConnectionStatus, SyncRun
from apps.integrations.sync import connections_due_for_sync, sync_run
from apps.integrations.tasks import sync_due_connections
from apps.messaging.models import Conversation, Fan, Message, Purchase
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_server, settings):
    """The fake provider: account acct-1 (key-1) with 5 fans, 2 messages and 1 tip each; pages of 4."""
    settings.INTEGRATIONS_API_LOOPBACK_ONLY = True
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = True
    settings.INTEGRATIONS_SYNC_PAGE_SIZE = 4
    api_server.reset()
    api_server.seed(api_server.account("acct-1", "key-1"), fans=5, messages_per_fan=2, transactions_per_fan=1)
    yield api_server
    api_server.reset()


@pytest.fixture
def live(api, world):
    connection, _ = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="fansly",
        api_base_url=api.base_url, api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    return connection


def snapshot(creator):
    return (
        sorted(Fan.objects.filter(creator=creator).values_list("platform_fan_id", "username", "updated_at")),
        sorted(Message.objects.filter(creator=creator).values_list("platform_message_id", "text")),
        sorted(Purchase.objects.filter(creator=creator).values_list("platform_purchase_id", "amount")),
    )


def test_the_first_sync_brings_fans_messages_and_transactions(live, api, world):
    run = sync_run(connection_id=live.pk).run
    assert run.status == "succeeded" and run.error == ""
    assert (run.fans_synced, run.messages_synced, run.transactions_synced) == (5, 10, 5)
    assert run.pages == 2 + 3 + 2  # 5 fans, 10 messages, 5 transactions in pages of 4
    fan = Fan.objects.get(creator=world.creator, platform="fansly", platform_fan_id="fan-3")
    assert (fan.username, fan.display_name, fan.subscription_state) == ("fan3", "Fan 3", "active")
    assert fan.total_spent == 5 and Conversation.objects.get(fan=fan).needs_reply
    assert Message.objects.filter(fan=fan, direction="in").count() == 2
    connection = Connection.objects.get(pk=live.pk)
    assert connection.last_sync_at is not None and connection.last_error == ""
    assert set(run.cursors) == {"fans", "messages", "transactions"}


def test_a_rerun_with_the_same_data_changes_nothing(live, api, world):
    sync_run(connection_id=live.pk)
    before = snapshot(world.creator)
    again = sync_run(connection_id=live.pk).run
    assert again.records == 0 and snapshot(world.creator) == before
    # Even from the very beginning (cursors lost), the same data changes nothing.
    SyncRun.objects.update(cursors={})
    scratch = sync_run(connection_id=live.pk).run
    assert scratch.status == "succeeded" and scratch.records == 0 and scratch.unchanged == 20
    assert snapshot(world.creator) == before


def test_the_next_run_reads_only_what_changed_after_its_cursor(live, api, world):
    first = sync_run(connection_id=live.pk).run
    account = api.account("acct-1")
    with api.lock:
        account.put_fan("fan-2", username="fan2", name="Renamed Two", state="expired")
        account.put_fan("fan-9", username="newbie", name="New Fan")
        account.add_message("fan-9", "hi, just subscribed")
        account.add_message("fan-1", "outbound reply", from_fan=False)
        account.add_transaction("fan-9", "subscription", "9.99", subscription_id="sub-77")
    api.state.requests.clear()
    second = sync_run(connection_id=live.pk).run
    assert (second.fans_synced, second.messages_synced, second.transactions_synced) == (2, 1, 1)
    assert second.unchanged == 1  # the creator's own outbound message
    first_fans_request = api.requests_to("GET", "/fans")[0]
    assert first_fans_request["query"]["cursor"] == first.cursors["fans"]
    renamed = Fan.objects.get(creator=world.creator, platform_fan_id="fan-2")
    assert (renamed.display_name, renamed.subscription_state) == ("Renamed Two", "expired")
    purchase = Purchase.objects.get(fan__platform_fan_id="fan-9")
    assert purchase.kind == "subscription" and purchase.platform_purchase_id.startswith("subscription:t")


def test_a_run_stopped_by_an_outage_is_resumed_from_its_cursor(live, api, world):
    api.fail_next(503, after=1)  # the second fans page fails
    failed = sync_run(connection_id=live.pk)
    assert failed.run.status == "failed" and "HTTP 503" in failed.run.error and failed.retry_in == 60.0
    assert failed.run.fans_synced == 4 and "fans" in failed.run.cursors
    assert "Sync failed" in Connection.objects.get(pk=live.pk).last_error
    api.state.requests.clear()
    resumed = sync_run(connection_id=live.pk).run
    assert resumed.status == "succeeded" and resumed.fans_synced == 1
    assert api.requests_to("GET", "/fans")[0]["query"]["cursor"] == failed.run.cursors["fans"]
    assert Fan.objects.filter(creator=world.creator).count() == 5 and Message.objects.count() == 10
    assert Connection.objects.get(pk=live.pk).last_error == ""


def test_a_run_whose_worker_died_is_marked_interrupted_and_resumed(live, api, world, settings):
    sync_run(connection_id=live.pk)
    cursors = SyncRun.objects.get().cursors
    old = timezone.now() - timedelta(seconds=settings.INTEGRATIONS_SYNC_STALE_SECONDS + 5)
    dead = SyncRun.objects.create(agency=world.agency, connection=live, cursors=cursors, heartbeat_at=old)
    # While a run is alive no second one starts; a stale one is taken over.
    assert sync_run(connection_id=live.pk).run is not None
    dead.refresh_from_db()
    assert dead.status == "interrupted" and "resumed" in dead.error


def test_a_live_run_blocks_a_second_one(live, api, world):
    SyncRun.objects.create(agency=world.agency, connection=live, heartbeat_at=timezone.now())
    assert sync_run(connection_id=live.pk).run is None
    assert api.requests_to("GET", "/fans") == []


def test_a_short_429_is_waited_out_and_a_long_one_reschedules(live, api, world):
    api.fail_next(429, retry_after=0.2)
    assert sync_run(connection_id=live.pk).run.status == "succeeded"
    api.fail_next(429, retry_after=120)
    outcome = sync_run(connection_id=live.pk)
    assert outcome.run.status == "failed" and outcome.retry_in == 120 and "per-minute" in outcome.run.error


def test_a_revoked_key_mid_sync_marks_the_connection_and_tells_the_owner(live, api, world):
    api.fail_next(401, after=2)  # the key is revoked while the fans feed is being read
    outcome = sync_run(connection_id=live.pk)
    assert outcome.run.status == "failed" and outcome.retry_in is None
    connection = Connection.objects.get(pk=live.pk)
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT and "refused" in connection.last_error
    assert Notification.objects.filter(user=world.owner.user, title__contains="Reconnect").count() == 1
    assert connections_due_for_sync() == []  # not retried until someone reconnects


def test_the_demo_simulated_connection_is_never_synced(api, world):
    Connection.objects.create(
        agency=world.agency, creator=world.creator, platform="onlyfans", status="connected",
        is_simulated=True, api_base_url=api.base_url, api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    assert connections_due_for_sync() == [] and api.state.requests == []


def test_beat_queues_connections_not_synced_within_the_interval(live, api, world, eager_celery):
    assert connections_due_for_sync() == [live.pk]
    assert sync_due_connections() == 1
    assert SyncRun.objects.get().status == "succeeded" and Fan.objects.count() == 5
    assert connections_due_for_sync() == []  # synced just now


# --- Pages --------------------------------------------------------------------------------------------


def test_sync_now_starts_a_run_and_the_history_shows_it(
    live, api, world, client_for, eager_celery, django_capture_on_commit_callbacks
):
    client = client_for(world.owner)
    empty = client.get(f"/integrations/connections/{live.pk}/sync/")
    assert empty.status_code == 200 and "No sync has run" in empty.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/integrations/connections/{live.pk}/sync/start/")
    assert response.status_code == 302 and response["Location"] == f"/integrations/connections/{live.pk}/sync/"
    page = client.get(response["Location"]).content.decode()
    assert "Sync started" in page and "Succeeded" in page
    run = SyncRun.objects.get()
    assert run.trigger == "manual" and run.started_by == world.owner.user and run.fans_synced == 5


def test_the_history_is_paginated_with_a_constant_query_count(live, world, client_for, django_assert_max_num_queries):
    now = timezone.now()
    SyncRun.objects.bulk_create(
        [SyncRun(agency=world.agency, connection=live, status="failed", error=f"<b>boom {n}</b>",
                 finished_at=now, heartbeat_at=now) for n in range(30)]
    )  # fmt: skip
    client = client_for(world.owner)
    with django_assert_max_num_queries(12):
        first = client.get(f"/integrations/connections/{live.pk}/sync/")
    with django_assert_max_num_queries(12):
        second = client.get(f"/integrations/connections/{live.pk}/sync/?page=2")
    assert "Page 1 of 2" in first.content.decode() and second.content.decode().count("boom") == 5
    assert "<b>boom" not in first.content.decode()  # the provider's error text is escaped


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_members_who_cannot_edit_see_the_history_but_cannot_sync(live, world, client_for, role):
    client = client_for(world.member(role))
    page = client.get(f"/integrations/connections/{live.pk}/sync/")
    assert page.status_code == 200 and "Sync now" not in page.content.decode()
    assert client.post(f"/integrations/connections/{live.pk}/sync/start/").status_code == 403
    assert SyncRun.objects.count() == 0


def test_another_agencys_connection_is_a_404(live, other_world, client_for):
    client = client_for(other_world.owner)
    assert client.get(f"/integrations/connections/{live.pk}/sync/").status_code == 404
    assert client.post(f"/integrations/connections/{live.pk}/sync/start/").status_code == 404


def test_sync_now_refuses_a_connection_without_a_live_account(world, client_for, django_capture_on_commit_callbacks):
    connection = Connection.objects.create(agency=world.agency, creator=world.creator, platform="onlyfans",
                                           status="connected", is_simulated=True)  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(world.owner).post(f"/integrations/connections/{connection.pk}/sync/start/", follow=True)
    assert "Only a connected OnlyFans or Fansly API account" in response.content.decode() and callbacks == []


def test_no_sync_starts_while_the_platforms_breaker_is_open(live, api, settings):
    from apps.delivery.breaker import breaker_record

    breaker_record("fansly", sends=settings.DELIVERY_BREAKER_FAILURES, failures=settings.DELIVERY_BREAKER_FAILURES)
    try:
        outcome = sync_run(connection_id=live.pk)
        assert outcome.run is None and 0 < outcome.retry_in <= settings.DELIVERY_BREAKER_COOLDOWN_SECONDS
        assert api.requests_to("GET", "/fans") == [] and SyncRun.objects.count() == 0
    finally:
        breaker_record("fansly", sends=1, failures=0, probe=True)  # closes it for the other tests


def test_sync_now_while_a_sync_runs_says_so_and_queues_nothing(
    live, world, client_for, django_capture_on_commit_callbacks
):
    SyncRun.objects.create(agency=world.agency, connection=live, heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(world.manager).post(f"/integrations/connections/{live.pk}/sync/start/", follow=True)
    assert "already running" in response.content.decode() and callbacks == []


def test_a_date_that_is_no_real_day_does_not_stop_the_sync(live, api, world):
    odd = api.account("acct-1", "key-1").add_message("fan-1", "sent on a day that does not exist")
    odd["created_at"] = "2026-02-30T10:00:00Z"  # the right shape, not a real moment
    run = sync_run(connection_id=live.pk).run
    assert run.status == "succeeded" and run.error == ""
    assert Message.objects.filter(fan__platform_fan_id="fan-1", text="sent on a day that does not exist").exists()


def test_a_long_first_sync_and_a_large_upload_are_not_cut_at_the_default_time_limit(settings):
    # The full-size first sync took 319 s (docs/benchmarks.md); CELERY_TASK_TIME_LIMIT is 300 s.
    from apps.integrations import tasks

    assert tasks.sync_connection.time_limit == settings.INTEGRATIONS_SYNC_TIME_LIMIT >= 1800
    assert tasks.sync_connection.soft_time_limit < tasks.sync_connection.time_limit
    # A publish step gets nearly its whole lease, and ends before the sweep may take the post over.
    assert settings.CELERY_TASK_TIME_LIMIT < tasks.publish_post.time_limit < settings.INTEGRATIONS_PUBLISH_LEASE_SECONDS
