"""The drafts API (/api/v1/conversations/{id}/drafts, …/drafts/stream, /api/v1/drafts/{id}):
JSON and Server-Sent Events, the project's auth and error shapes, outsiders 404, viewers 403."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from apps.accounts import services as account_services
from apps.messaging.models import Draft, DraftStatus, Message
from tests.conftest import build_world, login_client
from tests.messaging.factories import ConversationFactory, MessageFactory
from tests.messaging.test_drafts import GOOD, short_lived_connections  # noqa: F401 (a fixture)


def token_client(membership) -> Client:
    _, secret = account_services.api_token_create(membership=membership, name="drafts")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def thread(world, creator=None):
    conversation = ConversationFactory(fan__creator=creator or world.creator, fan__display_name="Jake Miller")
    MessageFactory(conversation=conversation, text="hey, did you see my tip? loved the beach pics")
    return conversation


def post_drafts(client, conversation_id, **body):
    return client.post(
        f"/api/v1/conversations/{conversation_id}/drafts", json.dumps(body), content_type="application/json"
    )


def sse_events(response) -> list[tuple[str, dict]]:
    async def read() -> list[bytes]:
        return [chunk async for chunk in response.streaming_content]

    raw = b"".join(async_to_sync(read)()).decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_post_writes_scored_drafts_and_sends_nothing(world, builtin):
    conversation = thread(world)
    response = post_drafts(token_client(world.chatter), conversation.pk)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["errors"] == [] and len(body["drafts"]) == 3
    for draft in body["drafts"]:
        assert draft["conversation_id"] == conversation.pk and draft["status"] == "pending"
        assert draft["kind"] == "reply" and "Jake" in draft["text"]
        assert set(draft["factors"]) == {"uses name", "refers to history", "fits the tier", "tone match", "length"}
        assert draft["score"] == sum(draft["factors"].values())
        assert isinstance(draft["suggestions"], list) and draft["suggested_price"] is None
    assert Draft.objects.filter(conversation=conversation).count() == 3
    assert not Message.objects.filter(direction="out").exists()


def test_upsell_with_a_count_comes_with_a_price(world, builtin):
    response = post_drafts(login_client(world.owner), thread(world).pk, kind="upsell", count=1)
    assert response.status_code == 201
    (draft,) = response.json()["drafts"]
    assert draft["kind"] == "upsell"
    assert world.creator.ppv_price_min <= Decimal(str(draft["suggested_price"])) <= world.creator.ppv_price_max
    assert draft["price_reason"].startswith("No PPV unlocks yet")


def test_refused_drafts_are_listed_as_errors_and_all_refused_is_502(world, remote):
    conversation = thread(world)
    remote.configure(reply_queue=[GOOD, "Sure, I'll refund you babe", GOOD])
    body = post_drafts(token_client(world.manager), conversation.pk).json()
    assert len(body["drafts"]) == 2
    assert len(body["errors"]) == 1 and "refunds" in body["errors"][0]["message"]
    remote.reply_text = "Add me on Telegram @jess_private"
    response = post_drafts(token_client(world.manager), conversation.pk)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "drafts_unavailable"
    assert "on the platform" in response.json()["error"]["message"]
    assert Draft.objects.filter(conversation=conversation).count() == 2


@pytest.mark.parametrize(
    ("body", "field"), [({"kind": "poem"}, "kind"), ({"count": 0}, "count"), ({"count": 4}, "count")]
)
def test_bad_kind_or_count_is_a_422_naming_the_field(world, remote, body, field):
    response = post_drafts(login_client(world.owner), thread(world).pk, **body)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert remote.count("openai") == 0


def test_viewer_gets_403_and_outsiders_404(world, builtin):
    conversation = thread(world)
    viewer = post_drafts(token_client(world.viewer), conversation.pk)
    assert viewer.status_code == 403 and viewer.json()["error"]["code"] == "permission_denied"
    outsider = token_client(build_world("Rival").owner)
    assert post_drafts(outsider, conversation.pk).status_code == 404
    unassigned = thread(world, creator=world.other_creator)
    assert post_drafts(token_client(world.chatter), unassigned.pk).status_code == 404
    assert outsider.get(f"/api/v1/conversations/{conversation.pk}/drafts/stream").status_code == 404
    assert post_drafts(outsider, 2**63 + 5).status_code == 422
    assert not Draft.objects.exists()


def test_read_and_discard_a_draft(world, builtin):
    conversation = thread(world)
    client = token_client(world.chatter)
    draft_id = post_drafts(client, conversation.pk, count=1).json()["drafts"][0]["id"]
    read = client.get(f"/api/v1/drafts/{draft_id}")
    assert read.status_code == 200 and read.json()["id"] == draft_id
    assert token_client(world.viewer).get(f"/api/v1/drafts/{draft_id}").status_code == 200
    assert token_client(world.viewer).post(f"/api/v1/drafts/{draft_id}/discard").status_code == 403
    outsider = token_client(build_world("Rival").owner)
    assert outsider.get(f"/api/v1/drafts/{draft_id}").status_code == 404
    assert outsider.post(f"/api/v1/drafts/{draft_id}/discard").status_code == 404
    discarded = client.post(f"/api/v1/drafts/{draft_id}/discard")
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    assert Draft.objects.get(pk=draft_id).status == DraftStatus.DISCARDED
    Draft.objects.filter(pk=draft_id).update(status=DraftStatus.SENT)
    sent = client.post(f"/api/v1/drafts/{draft_id}/discard")
    assert sent.status_code == 400 and sent.json()["error"]["fields"] == {
        "draft": ["This draft was sent; it cannot be discarded."]
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_answers_server_sent_events(remote):
    world = build_world("SSE")
    conversation = thread(world)
    remote.configure(reply_queue=[GOOD, "As an AI, I can't do that"], chunk_size=9)
    response = token_client(world.chatter).get(f"/api/v1/conversations/{conversation.pk}/drafts/stream?count=2")
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names) == {"chunk", "draft", "error", "done"}
    (draft,) = [data for name, data in events if name == "draft"]
    (error,) = [data for name, data in events if name == "error"]
    streamed = "".join(data["text"] for name, data in events if name == "chunk" and data["index"] == draft["index"])
    assert streamed == GOOD == draft["draft"]["text"]
    assert draft["draft"]["status"] == "pending" and "score" in draft["draft"]
    assert error["index"] != draft["index"] and "breaks character" in error["message"]
    assert Draft.objects.filter(conversation=conversation).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_refuses_before_streaming(builtin):
    world = build_world("SSE rights")
    conversation = thread(world)
    viewer = token_client(world.viewer).get(f"/api/v1/conversations/{conversation.pk}/drafts/stream")
    assert viewer.status_code == 403
    bad = token_client(world.owner).get(f"/api/v1/conversations/{conversation.pk}/drafts/stream?kind=poem")
    assert bad.status_code == 422 and "kind" in bad.json()["error"]["fields"]
    upsell = token_client(world.owner).get(f"/api/v1/conversations/{conversation.pk}/drafts/stream?kind=upsell&count=1")
    events = sse_events(upsell)
    (draft,) = [data["draft"] for name, data in events if name == "draft"]
    assert draft["kind"] == "upsell" and draft["suggested_price"] is not None
