"""API: the inbox (priority order, filters, history paged backwards), sending (conflicts,
idempotency, validation), marking read, and the audit log."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.delivery.models import Delivery
from apps.messaging import services
from apps.messaging.models import Conversation, Draft, Message
from tests.messaging.api_helpers import error, token_client, waiting_conversation
from tests.messaging.factories import (
    ConversationFactory,
    FanFactory,
    FanTagFactory,
    MessageFactory,
    SegmentFactory,
    TemplateFactory,
)

JSON = "application/json"


def _send(client, conversation, **body):
    return client.post(f"/api/v1/conversations/{conversation.pk}/messages", body, content_type=JSON)


def test_inbox_lists_by_priority_with_filters(world):
    small = waiting_conversation(world.creator, username="small")
    whale = waiting_conversation(world.creator, username="whale", total_spent=Decimal(900), spent_tips=Decimal(900))
    Conversation.objects.filter(pk=whale.pk).update(fan_value=Decimal(900))
    answered = ConversationFactory(fan=FanFactory(creator=world.creator, username="answered"))
    FanTagFactory(fan=small.fan, name="vip")
    client = token_client(world.owner)

    def ids(query: str = "") -> list[int]:
        response = client.get(f"/api/v1/conversations?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [whale.pk, small.pk, answered.pk]
    assert ids("waiting=true") == [whale.pk, small.pk]
    assert ids("tag=vip") == [small.pk]
    assert ids("search=whal") == [whale.pk]
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["whale"]})
    assert ids(f"segment_id={segment.pk}") == [whale.pk]
    first = client.get("/api/v1/conversations").json()["items"][0]
    assert first["needs_reply"] and first["fan"]["tier"] == "whale" and first["message_count"] == 1
    assert first["last_message_preview"] == "are you online?"


def test_chatter_inbox_and_outsiders(world, other_world):
    mine = waiting_conversation(world.creator)
    theirs = waiting_conversation(world.other_creator)
    chatter = token_client(world.chatter)
    assert [item["id"] for item in chatter.get("/api/v1/conversations").json()["items"]] == [mine.pk]
    assert chatter.get(f"/api/v1/conversations/{theirs.pk}").status_code == 404
    assert _send(chatter, theirs, text="hi").status_code == 404
    outsider = token_client(other_world.owner)
    for method, url in [
        ("get", f"/api/v1/conversations/{mine.pk}"),
        ("get", f"/api/v1/conversations/{mine.pk}/messages"),
        ("post", f"/api/v1/conversations/{mine.pk}/messages"),
        ("post", f"/api/v1/conversations/{mine.pk}/read"),
    ]:
        response = getattr(outsider, method)(url, {"text": "hijack"}, content_type=JSON)
        assert response.status_code == 404 and error(response)["code"] == "not_found", url
    assert outsider.get(f"/api/v1/conversations?creator_id={world.creator.pk}").status_code == 404
    assert Message.objects.filter(conversation=mine).count() == 1


@pytest.mark.parametrize("extra", [0, 25])
def test_inbox_query_count_is_constant(world, django_assert_num_queries, extra):
    for index in range(extra):
        waiting_conversation(world.creator if index % 2 else world.other_creator)
    waiting_conversation(world.creator)
    client = token_client(world.chatter)
    # token, stamp, fan rules, creator visibility check is a subquery; count, page
    with django_assert_num_queries(5):
        assert client.get("/api/v1/conversations").status_code == 200


def test_history_pages_backwards(world):
    conversation = ConversationFactory(fan=FanFactory(creator=world.creator))
    start = timezone.now() - timedelta(hours=1)
    messages = [
        MessageFactory(conversation=conversation, text=f"m{i}", created_at=start + timedelta(minutes=i))
        for i in range(7)
    ]
    client = token_client(world.viewer)
    url = f"/api/v1/conversations/{conversation.pk}/messages"
    page = client.get(f"{url}?limit=3").json()
    assert [item["text"] for item in page["items"]] == ["m4", "m5", "m6"]
    assert page["has_more"] and page["before_id"] == messages[4].pk
    page = client.get(f"{url}?limit=3&before_id={page['before_id']}").json()
    assert [item["text"] for item in page["items"]] == ["m1", "m2", "m3"] and page["has_more"]
    page = client.get(f"{url}?limit=3&before_id={page['before_id']}").json()
    assert [item["text"] for item in page["items"]] == ["m0"]
    assert not page["has_more"] and page["before_id"] is None
    response = client.get(f"{url}?limit=101")
    assert response.status_code == 422 and "limit" in error(response)["fields"]


def test_send_queues_the_message_and_answers_201(world, django_capture_on_commit_callbacks):
    conversation = waiting_conversation(world.creator)
    client = token_client(world.chatter)
    with django_capture_on_commit_callbacks():
        response = _send(client, conversation, text="I'm here babe", seen_message_count=1)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["direction"], body["status"], body["source"]) == ("out", "queued", "human")
    assert body["sent_by_email"] == world.chatter.user.email and body["text"] == "I'm here babe"
    delivery = Delivery.objects.get(idempotency_key=body["idempotency_key"])
    assert delivery.source == "messaging.message" and delivery.source_id == body["id"]
    detail = client.get(f"/api/v1/conversations/{conversation.pk}").json()
    assert not detail["needs_reply"] and detail["message_count"] == 2


def test_a_colleague_answering_first_is_a_409_naming_them(world):
    conversation = waiting_conversation(world.creator)
    assert _send(token_client(world.manager), conversation, text="first", seen_message_count=1).status_code == 201
    response = _send(token_client(world.chatter), conversation, text="second", seen_message_count=1)
    assert response.status_code == 409 and error(response)["code"] == "conflict"
    assert world.manager.user.email in error(response)["message"]
    assert list(Message.objects.filter(conversation=conversation, direction="out").values_list("text", flat=True)) == [
        "first"
    ]
    assert Delivery.objects.filter(agency=world.agency).count() == 1


def test_a_repeated_idempotency_key_answers_200_with_the_same_message(world):
    conversation = waiting_conversation(world.creator)
    client = token_client(world.chatter)
    first = _send(client, conversation, text="once", idempotency_key="retry-1", seen_message_count=1)
    assert first.status_code == 201
    again = _send(client, conversation, text="once", idempotency_key="retry-1", seen_message_count=1)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    header = client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"text": "once"},
        content_type=JSON,
        HTTP_IDEMPOTENCY_KEY="retry-1",
    )
    assert header.status_code == 200 and header.json()["id"] == first.json()["id"]
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
    assert Delivery.objects.filter(agency=world.agency).count() == 1
    other = waiting_conversation(world.creator)
    response = _send(client, other, text="reuse", idempotency_key="retry-1")
    assert response.status_code == 409 and "idempotency_key" in error(response)["fields"]


def test_the_idempotency_key_header_is_used(world):
    conversation = waiting_conversation(world.creator)
    response = token_client(world.chatter).post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"text": "hello"},
        content_type=JSON,
        HTTP_IDEMPOTENCY_KEY="from-header",
    )
    assert response.status_code == 201 and response.json()["idempotency_key"] == "from-header"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"text": ""}, 400, "text"),
        ({"text": "x" * 20001}, 422, "text"),
        ({"text": "buy", "ppv_price": "0"}, 422, "ppv_price"),
        ({"text": "buy", "ppv_price": "15.00"}, 400, "ppv_price"),  # PPV needs media
        ({"text": "hi", "media_count": 101}, 422, "media_count"),
        ({"text": "hi", "seen_message_count": -1}, 422, "seen_message_count"),
        ({"text": "hi", "idempotency_key": "k" * 65}, 422, "idempotency_key"),
    ],
)
def test_bad_sends_name_the_field_and_send_nothing(world, body, status, field):
    conversation = waiting_conversation(world.creator)
    response = _send(token_client(world.chatter), conversation, **body)
    assert response.status_code == status, response.content
    assert field in error(response)["fields"]
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()


def test_send_from_a_template_or_a_draft(world, other_world):
    conversation = waiting_conversation(world.creator, display_name="Marco")
    template = TemplateFactory(agency=world.agency, text="Hi {fan.first_name|babe}!")
    client = token_client(world.chatter)
    response = _send(client, conversation, text="Hi Marco!!", template_id=template.pk)
    assert response.status_code == 201 and response.json()["source"] == "template"
    assert Decimal(str(response.json()["edit_ratio"])) > 0
    services.message_receive(fan=conversation.fan, text="more?")
    draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=conversation, text="Sure thing", score=80
    )
    response = _send(client, conversation, text="Sure thing", draft_id=draft.pk)
    assert response.status_code == 201 and response.json()["source"] == "ai_draft"
    assert Decimal(str(response.json()["edit_ratio"])) == 0
    foreign = TemplateFactory(agency=other_world.agency)
    assert _send(client, conversation, text="x", template_id=foreign.pk).status_code == 404
    other_conversation = waiting_conversation(world.creator)
    other_draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=other_conversation, text="No", score=10
    )
    response = _send(client, conversation, text="x", draft_id=other_draft.pk)
    assert response.status_code == 400 and "draft_id" in error(response)["fields"]


def test_who_may_send(world):
    conversation = waiting_conversation(world.creator)
    response = _send(token_client(world.viewer), conversation, text="hi")
    assert response.status_code == 403 and error(response)["code"] == "permission_denied"
    assert _send(token_client(world.owner, scope="read"), conversation, text="hi").status_code == 403
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
    assert _send(token_client(world.chatter, scope="write"), conversation, text="hi").status_code == 201


def test_mark_read(world):
    conversation = waiting_conversation(world.creator)
    assert conversation.unread_count == 1
    response = token_client(world.chatter).post(f"/api/v1/conversations/{conversation.pk}/read")
    assert response.status_code == 200 and response.json()["unread_count"] == 0
    conversation.refresh_from_db()
    assert conversation.unread_count == 0 and conversation.needs_reply


def _sent(world, membership, creator, text, source="human", days_ago=0):
    conversation = waiting_conversation(creator)
    message = services.message_send(membership=membership, conversation=conversation, text=text)
    Message.objects.filter(pk=message.pk).update(source=source, created_at=timezone.now() - timedelta(days=days_ago))
    return message


def test_audit_log_filters_and_roles(world, other_world):
    typed = _sent(world, world.chatter, world.creator, "typed by chatter")
    old = _sent(world, world.manager, world.other_creator, "old one", source="ai_draft", days_ago=10)
    client = token_client(world.owner, scope="read")
    body = client.get("/api/v1/audit").json()
    assert [item["id"] for item in body["items"]] == [typed.pk, old.pk]
    assert body["items"][0]["sent_by_email"] == world.chatter.user.email
    assert [i["id"] for i in client.get(f"/api/v1/audit?membership_id={world.chatter.pk}").json()["items"]] == [
        typed.pk
    ]
    assert [i["id"] for i in client.get("/api/v1/audit?source=ai_draft").json()["items"]] == [old.pk]
    assert [i["id"] for i in client.get(f"/api/v1/audit?creator_id={world.creator.pk}").json()["items"]] == [typed.pk]
    since = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert [i["id"] for i in client.get(f"/api/v1/audit?since={since}").json()["items"]] == [typed.pk]
    response = client.get(f"/api/v1/audit?since={since}&until={since}")
    assert response.status_code == 400 and "until" in error(response)["fields"]
    assert client.get("/api/v1/audit?source=fan").status_code == 422
    response = client.get("/api/v1/audit?since=0001-01-01T00:00:00%2B01:00")
    assert response.status_code == 400 and "since" in error(response)["fields"]
    assert client.get(f"/api/v1/audit?membership_id={other_world.owner.pk}").status_code == 404
    for membership in (world.chatter, world.viewer):
        response = token_client(membership).get("/api/v1/audit")
        assert response.status_code == 403 and error(response)["code"] == "permission_denied"
    assert token_client(world.manager).get("/api/v1/audit").json()["count"] == 2
    assert token_client(other_world.owner).get("/api/v1/audit").json()["count"] == 0
