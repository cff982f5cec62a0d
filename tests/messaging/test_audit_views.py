"""The audit log: owners and managers read, filter and export every message sent in a creator's
name; chatters and viewers are refused."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.messaging.models import Direction, MessageStatus, Source
from tests.conftest import login_client
from tests.messaging.factories import ConversationFactory, FanFactory, MessageFactory

pytestmark = pytest.mark.django_db


def sent(world, member, *, source=Source.HUMAN, ratio=None, text="Hi", days_ago=0, creator=None):
    fan = FanFactory(creator=creator or world.creator)
    return MessageFactory(
        conversation=ConversationFactory(fan=fan),
        direction=Direction.OUTBOUND,
        source=source,
        status=MessageStatus.SENT,
        sent_by=member.user,
        sent_by_email=member.user.email,
        text=text,
        edit_ratio=Decimal(ratio) if ratio is not None else None,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def test_owner_reads_who_sent_what_and_how_much_was_edited(world):
    sent(world, world.chatter, source=Source.AI_DRAFT, ratio="0.250", text="Draft kept mostly")
    MessageFactory(conversation=ConversationFactory(fan=FanFactory(creator=world.creator)), text="fan wrote this")
    body = login_client(world.owner).get("/audit/").content.decode()
    assert "Draft kept mostly" in body and world.chatter.user.email in body
    assert "AI draft" in body and "25%" in body
    assert "fan wrote this" not in body  # inbound messages are not in the audit


def test_filters(world):
    sent(world, world.chatter, source=Source.TEMPLATE, text="from template")
    sent(world, world.manager, source=Source.HUMAN, text="typed by manager", days_ago=10)
    sent(world, world.owner, source=Source.HUMAN, text="other creator", creator=world.other_creator)
    client = login_client(world.owner)

    def texts(query):
        body = client.get(f"/audit/?{query}").content.decode()
        return {t for t in ("from template", "typed by manager", "other creator") if t in body}

    assert texts("source=template") == {"from template"}
    assert texts(f"member={world.manager.user_id}") == {"typed by manager"}
    assert texts(f"creator={world.other_creator.pk}") == {"other creator"}
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    assert texts(f"since={day}&until={day}") == {"typed by manager"}
    assert "end date is before" in client.get("/audit/?since=2026-05-02&until=2026-05-01").content.decode()


def test_empty_state(world):
    assert "Nothing sent yet" in login_client(world.manager).get("/audit/").content.decode()


@pytest.mark.parametrize("extra", [0, 30])
def test_paginated_in_constant_queries(world, django_assert_max_num_queries, extra):
    for _ in range(3 + extra):
        sent(world, world.chatter)
    client = login_client(world.owner)
    client.get("/audit/")
    with django_assert_max_num_queries(12):
        assert client.get("/audit/").status_code == 200


def test_export_csv(world):
    sent(world, world.chatter, source=Source.AI_DRAFT, ratio="0.5", text='=HYPERLINK("http://x")')
    response = login_client(world.owner).get("/audit/export.csv?source=ai_draft")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["sent_by"] == world.chatter.user.email
    assert rows[0]["edit_ratio_percent"] == "50.0"
    assert rows[0]["text"].startswith("'=")


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatters_and_viewers_are_refused(world, role):
    sent(world, world.owner)
    client = login_client(world.member(role))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_outsider_sees_nothing_of_ours(world, other_world):
    sent(world, world.owner, text="our private message")
    client = login_client(other_world.owner)
    assert "our private message" not in client.get("/audit/").content.decode()
    body = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    assert "our private message" not in body
    assert "Select a valid choice" in client.get(f"/audit/?creator={world.creator.pk}").content.decode()


def test_a_message_without_a_sender_is_listed(world):
    message = sent(world, world.owner, text="automation said hi", source=Source.AUTOMATION)
    type(message).objects.filter(pk=message.pk).update(sent_by=None, sent_by_email="")
    response = login_client(world.owner).get("/audit/")
    assert response.status_code == 200 and "automation said hi" in response.content.decode()


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01"])
def test_a_day_outside_the_years_held_is_a_field_error(world, query):
    # since=0001-01-01 east of UTC is a moment before year 1 in UTC.
    world.owner.user.timezone = "Asia/Kathmandu"
    world.owner.user.save(update_fields=["timezone"])
    sent(world, world.owner, text="still listed")
    client = login_client(world.owner)
    response = client.get(f"/audit/?{query}")
    assert response.status_code == 200
    assert "between the years 2000 and 2200" in response.content.decode()
    export = client.get(f"/audit/export.csv?{query}")
    assert export.status_code == 400 and "between the years 2000 and 2200" in export.content.decode()
