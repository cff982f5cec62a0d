"""The agency's event stream (SSE, with Last-Event-ID resume) and the outbox health endpoint."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from apps.accounts import events_api
from apps.accounts.services import api_token_create
from apps.core import events
from apps.core.models import OutboxEvent
from tests.conftest import build_world

STREAM = "/api/v1/events/stream"
SSE = {"Accept": "text/event-stream"}


def _token(membership) -> str:
    return api_token_create(membership=membership, name="events")[1]


def _frames(body: str) -> list[dict]:
    frames = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "id" in fields:
            frames.append(fields)
    return frames


async def _read_stream(token: str, *, headers: dict | None = None, query: str = "") -> tuple[int, str]:
    response = await AsyncClient().get(
        STREAM + query, headers={"Authorization": f"Bearer {token}", **SSE, **(headers or {})}
    )
    if not response.streaming:
        return response.status_code, response.content.decode()
    body = ""
    async for chunk in response.streaming_content:
        body += chunk.decode() if isinstance(chunk, bytes) else chunk
    return response.status_code, body


@pytest.fixture
def short_streams(settings):
    settings.EVENTS_SSE_MAX_SECONDS = 0.6
    settings.EVENTS_SSE_POLL_SECONDS = 0.05
    settings.EVENTS_SSE_HEARTBEAT_SECONDS = 0.2


@pytest.mark.django_db(transaction=True)
async def test_stream_shows_the_agencys_events_and_resumes_from_last_event_id(short_streams):
    world = await sync_to_async(build_world)("Streams")
    other = await sync_to_async(build_world)("Elsewhere")
    token = await sync_to_async(_token)(world.viewer)
    publish = sync_to_async(events.publish)
    first = await publish("campaign.progress", agency_id=world.agency.pk, payload={"sent": 1, "note": "<b>hi</b>"})
    await publish("campaign.progress", agency_id=other.agency.pk, payload={"secret": "Elsewhere only"})
    await publish("notification.created", agency_id=world.agency.pk, user_id=world.owner.user_id, payload={"t": "x"})
    mine = await publish("notification.created", agency_id=world.agency.pk, user_id=world.viewer.user_id, payload={})
    last = await publish("campaign.progress", agency_id=world.agency.pk, payload={"sent": 2})

    status, body = await _read_stream(token, query="?last_event_id=0")
    assert status == 200
    frames = _frames(body)
    # Only this agency's events, and of the private ones only the caller's; in id order.
    assert [int(f["id"]) for f in frames] == [first.pk, mine.pk, last.pk]
    assert frames[0]["event"] == "campaign.progress"
    assert json.loads(frames[0]["data"]) == {"sent": 1, "note": "<b>hi</b>"}
    assert "Elsewhere only" not in body and "heartbeat" in body and body.startswith("retry: ")

    # A reconnecting client names the last id it saw: it gets what it missed, nothing twice.
    status, body = await _read_stream(token, headers={"Last-Event-ID": str(mine.pk)})
    assert [int(f["id"]) for f in _frames(body)] == [last.pk]
    status, body = await _read_stream(token, headers={"Last-Event-ID": "0" * 5000 + str(mine.pk)})
    assert status == 200 and [int(f["id"]) for f in _frames(body)] == [last.pk]  # leading zeros are the same id


@pytest.mark.django_db(transaction=True)
async def test_a_chatters_stream_carries_only_their_creators_events(short_streams, monkeypatch):
    """As the inbox websocket: events naming a creator the chatter is not assigned to are left
    out (a whole batch of them too: the stream moves past it), the agency's other events are not."""
    monkeypatch.setattr(events_api, "STREAM_BATCH", 2)
    world = await sync_to_async(build_world)("Assigned")
    chatter_token = await sync_to_async(_token)(world.chatter)
    manager_token = await sync_to_async(_token)(world.manager)
    publish = sync_to_async(events.publish)
    theirs = [
        await publish("generation.completed", agency_id=world.agency.pk, payload={"creator_id": world.other_creator.pk})
        for _ in range(3)
    ]
    mine = await publish("generation.completed", agency_id=world.agency.pk, payload={"creator_id": world.creator.pk})
    agency_wide = await publish("workflow.run_changed", agency_id=world.agency.pk, payload={"run_id": 1})

    _, body = await _read_stream(chatter_token, query="?last_event_id=0")
    assert [int(f["id"]) for f in _frames(body)] == [mine.pk, agency_wide.pk]
    _, body = await _read_stream(manager_token, query="?last_event_id=0")
    assert [int(f["id"]) for f in _frames(body)] == [*(e.pk for e in theirs), mine.pk, agency_wide.pk]


@pytest.mark.django_db(transaction=True)
async def test_a_new_stream_starts_now_and_receives_live_events(short_streams, settings):
    settings.EVENTS_SSE_MAX_SECONDS = 1.5
    world = await sync_to_async(build_world)("Live")
    token = await sync_to_async(_token)(world.chatter)
    await sync_to_async(events.publish)("campaign.progress", agency_id=world.agency.pk, payload={"old": True})
    reading = asyncio.ensure_future(_read_stream(token))
    await asyncio.sleep(0.5)
    live = await sync_to_async(events.publish)("campaign.progress", agency_id=world.agency.pk, payload={"new": 1})
    status, body = await reading
    assert status == 200 and [int(f["id"]) for f in _frames(body)] == [live.pk]


@pytest.mark.django_db(transaction=True)
async def test_stream_refusals_are_clear_4xx(short_streams):
    world = await sync_to_async(build_world)("Refusals")
    token = await sync_to_async(_token)(world.viewer)
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.get(STREAM, headers=auth)  # no Accept: text/event-stream
    assert response.status_code == 406 and "text/event-stream" in response.json()["error"]["message"]
    # "²" is a digit to str.isdigit() but not to int(); int() refuses 4,300 digits or more
    for bad in ("abc", "\u00b2", str(2**63), "9" * 5000):
        response = await client.get(STREAM, headers={**auth, **SSE, "Last-Event-ID": bad})
        assert response.status_code == 400 and "Last-Event-ID" in response.json()["error"]["message"]
    response = await client.get(STREAM + "?last_event_id=-1", headers={**auth, **SSE})
    assert response.status_code == 422
    response = await client.get(STREAM, headers=SSE)
    assert response.status_code == 401
    response = await client.get(STREAM, headers={"Authorization": "Bearer hz_not_a_token", **SSE})
    assert response.status_code == 401


def test_outbox_health_for_owners_and_managers_of_their_agency(db, client_for):
    world = build_world("Health")
    other = build_world("Other")
    events.publish("campaign.progress", agency_id=world.agency.pk, payload={})
    events.publish("campaign.progress", agency_id=other.agency.pk, payload={})
    events.publish("campaign.progress", agency_id=other.agency.pk, payload={})
    OutboxEvent.objects.filter(agency_id=world.agency.pk).update(last_error="group user.1: ChannelFull")
    response = client_for(world.owner).get("/api/v1/events/outbox")
    assert response.status_code == 200
    body = response.json()
    assert body["pending"] == 1 and body["failing"] == 1 and body["lag_seconds"] >= 0
    assert body["oldest_pending_at"] is not None
    assert client_for(world.manager).get("/api/v1/events/outbox").status_code == 200
    for role in ("chatter", "viewer"):
        assert client_for(world.member(role)).get("/api/v1/events/outbox").status_code == 403
    token = _token(world.viewer)
    assert Client().get("/api/v1/events/outbox", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403


def test_failing_events_are_listed_with_their_error_and_sent_at_once_on_retry(db, client_for):
    from apps.core import outbox

    world = build_world("Failing")
    other = build_world("Elsewhere")
    calls: list[int] = []

    def webhook_down(event):
        calls.append(event.pk)
        if len(calls) <= 2:
            raise ConnectionError("webhook endpoint down <b>503</b>")

    events.subscribe("test.webhook", webhook_down)
    try:
        mine = events.publish("test.webhook", agency_id=world.agency.pk, payload={})
        theirs = events.publish("test.webhook", agency_id=other.agency.pk, payload={})
        events.publish("campaign.progress", agency_id=world.agency.pk, payload={})  # sent fine
        assert outbox.dispatch_pending().failed == 2
        owner = client_for(world.owner)

        listed = owner.get("/api/v1/events/outbox/failing")
        assert listed.status_code == 200
        body = listed.json()
        assert body["count"] == 1 and [item["id"] for item in body["items"]] == [mine.pk]
        item = body["items"][0]
        assert item["kind"] == "test.webhook" and item["attempts"] == 1
        assert "ConnectionError: webhook endpoint down <b>503</b>" in item["last_error"]  # JSON, not HTML
        assert item["next_attempt_at"] is not None
        assert outbox.dispatch_pending().claimed == 0  # backing off

        # Another agency's event, or one that is not failing: 404, nothing changed.
        assert owner.post(f"/api/v1/events/outbox/{theirs.pk}/retry").status_code == 404
        assert owner.post("/api/v1/events/outbox/999999999/retry").status_code == 404
        for role in ("chatter", "viewer"):
            member = client_for(world.member(role))
            assert member.get("/api/v1/events/outbox/failing").status_code == 403
            assert member.post(f"/api/v1/events/outbox/{mine.pk}/retry").status_code == 403

        retried = client_for(world.manager).post(f"/api/v1/events/outbox/{mine.pk}/retry")
        assert retried.status_code == 200 and retried.json()["id"] == mine.pk
        report = outbox.dispatch_pending()
        assert report.dispatched == 1  # due now: the other agency's event still backs off
        mine.refresh_from_db()
        assert mine.dispatched_at is not None and mine.last_error == ""
        assert owner.get("/api/v1/events/outbox/failing").json()["count"] == 0
        assert owner.post(f"/api/v1/events/outbox/{mine.pk}/retry").status_code == 404  # already sent
    finally:
        events.unsubscribe("test.webhook", webhook_down)


def test_outbox_health_runs_a_constant_number_of_queries(db, client_for, django_assert_max_num_queries):
    world = build_world("Queries")
    for _ in range(30):
        events.publish("campaign.progress", agency_id=world.agency.pk, payload={})
    client = client_for(world.owner)
    OutboxEvent.objects.filter(agency_id=world.agency.pk).update(last_error="group user.1: ChannelFull")
    client.get("/api/v1/events/outbox")
    with django_assert_max_num_queries(12):
        assert client.get("/api/v1/events/outbox").status_code == 200
    with django_assert_max_num_queries(12):  # 30 failing events, one page: no query per event
        assert client.get("/api/v1/events/outbox/failing").json()["count"] == 30


def test_admin_lists_the_outbox_with_its_lag(db, django_assert_max_num_queries):
    from apps.accounts.models import User

    admin = User.objects.create_superuser(email="root@example.com", password="pw-for-admin-123")
    for index in range(25):
        events.publish("campaign.progress", agency_id=index % 3 + 1, payload={"i": index})
    OutboxEvent.objects.filter(agency_id=1).update(last_error="subscriber webhooks: ConnectionError: down")
    client = Client()
    client.force_login(admin)
    client.get("/admin/core/outboxevent/")
    with django_assert_max_num_queries(15):
        response = client.get("/admin/core/outboxevent/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Waiting: 25 events, 9 failing" in page and "Lag (age of the oldest waiting event)" in page
    assert "ConnectionError: down" in page
    failing = client.get("/admin/core/outboxevent/?failing=yes").content.decode()
    assert failing.count("ConnectionError: down") == 9
    assert client.get(f"/admin/core/outboxevent/{OutboxEvent.objects.first().pk}/change/").status_code == 200
    assert client.get("/admin/core/outboxevent/add/").status_code == 403
