"""The inbox pages: the list (order, filters, search, pages, queries, empty state), a conversation
(history, sidebar, read, lock) and the composer (send, conflicts, double submits, errors, roles)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.delivery.models import Delivery
from apps.messaging import services
from apps.messaging.models import Conversation, Direction, Draft, FanNote, FanTag, Message, MessageStatus, Source
from tests.conftest import build_world
from tests.messaging.factories import (
    ConversationFactory,
    FanFactory,
    FanTagFactory,
    MessageFactory,
    PurchaseFactory,
    SegmentFactory,
    TemplateFactory,
)

INBOX = "/inbox/"


def _conversation(creator, *, name: str, value: str = "0", waiting_minutes: int | None = None, **fan_fields):
    fan = FanFactory(
        creator=creator,
        display_name=name,
        total_spent=Decimal(value),
        spent_tips=Decimal(value),
        **fan_fields,
    )
    now = timezone.now()
    waiting_since = now - timedelta(minutes=waiting_minutes) if waiting_minutes is not None else None
    conversation = ConversationFactory(
        fan=fan,
        needs_reply=waiting_since is not None,
        waiting_since=waiting_since,
        unread_count=1 if waiting_since else 0,
        last_message_at=waiting_since or now - timedelta(hours=3),
        last_message_preview=f"Hello from {name}",
        last_message_direction="in" if waiting_since else "out",
    )
    return conversation


def _names(response) -> list[str]:
    return re.findall(r'<strong class="fan-name">([^<]+)</strong>', response.content.decode())


def _page(client, conversation):
    response = client.get(f"/inbox/c/{conversation.pk}/")
    assert response.status_code == 200
    return response


def _composer_fields(response) -> dict:
    html = response.content.decode()
    form = html[html.index('id="composer"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    return fields


def _inbound(conversation, text="hi", minutes_ago=5):
    return services.message_receive(fan=conversation.fan, text=text, at=timezone.now() - timedelta(minutes=minutes_ago))


# --- The list ---------------------------------------------------------------------------------


def test_list_puts_waiting_first_then_value_then_longest_wait(world, client_for):
    _conversation(world.creator, name="Answered Whale", value="900")
    _conversation(world.creator, name="Small Waiting", value="5", waiting_minutes=50)
    _conversation(world.creator, name="Big Waiting", value="300", waiting_minutes=5)
    _conversation(world.creator, name="Small Waiting Longer", value="5", waiting_minutes=90)
    response = client_for(world.owner).get(INBOX)
    assert _names(response) == ["Big Waiting", "Small Waiting Longer", "Small Waiting", "Answered Whale"]
    body = response.content.decode()
    assert "waiting 1 h 30 min" in body and "waiting 5 min" in body
    assert "Hello from Big Waiting" in body
    assert "Velvet Star" in body  # the creator of each conversation


def test_list_shows_tier_and_lifecycle_badges_unread_and_lock(world, client_for):
    conversation = _conversation(world.creator, name="Whale Wendy", value="800", waiting_minutes=3)
    Conversation.objects.filter(pk=conversation.pk).update(
        locked_by=world.manager.user, locked_until=timezone.now() + timedelta(seconds=60), unread_count=4
    )
    world.manager.user.full_name = "Anna Keller"
    world.manager.user.save()
    body = client_for(world.owner).get(INBOX).content.decode()
    assert 'class="badge tier-whale">Whale<' in body
    assert 'class="badge lifecycle-active">Active<' in body
    assert 'aria-label="4 unread"' in body
    assert "Anna is answering" in body
    # The holder does not see their own lock as someone else's.
    assert "Anna is answering" not in client_for(world.manager).get(INBOX).content.decode()


def test_expired_lock_is_not_shown(world, client_for):
    conversation = _conversation(world.creator, name="Lapsed", waiting_minutes=3)
    Conversation.objects.filter(pk=conversation.pk).update(
        locked_by=world.manager.user, locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert "is answering" not in client_for(world.owner).get(INBOX).content.decode()


def test_filters_by_creator_tag_segment_waiting_and_search(world, client_for):
    luna = _conversation(world.creator, name="Luna Fan", value="600", waiting_minutes=4, username="moonchild")
    nova = _conversation(world.other_creator, name="Nova Fan", value="20")
    FanTagFactory(fan=luna.fan, name="feet")
    segment = SegmentFactory(agency=world.agency, name="Whales", filters={"tiers": ["whale"]})
    client = client_for(world.owner)
    assert _names(client.get(INBOX, {"creator": world.other_creator.pk})) == ["Nova Fan"]
    assert _names(client.get(INBOX, {"tag": "Feet"})) == ["Luna Fan"]
    assert _names(client.get(INBOX, {"segment": segment.pk})) == ["Luna Fan"]
    assert _names(client.get(INBOX, {"waiting": "on"})) == ["Luna Fan"]
    assert _names(client.get(INBOX, {"q": "moonch"})) == ["Luna Fan"]
    assert _names(client.get(INBOX, {"q": "nova"})) == ["Nova Fan"]
    empty = client.get(INBOX, {"q": "nobody-like-this"}).content.decode()
    assert "No conversation matches these filters." in empty
    assert nova  # both exist; each filter narrowed to one


def test_another_agencys_creator_or_segment_in_the_filters_shows_nothing_of_theirs(world, client_for):
    rival = build_world("Rival")
    _conversation(rival.creator, name="Rival Secret Fan", waiting_minutes=2)
    rival_segment = SegmentFactory(agency=rival.agency, name="Rival segment", filters={})
    _conversation(world.creator, name="Own Fan", waiting_minutes=2)
    client = client_for(world.owner)
    for params in ({"creator": rival.creator.pk}, {"segment": rival_segment.pk}, {"creator": "x"}):
        response = client.get(INBOX, params)
        assert response.status_code == 200
        body = response.content.decode()
        assert "Rival Secret Fan" not in body and "Own Fan" not in body
        assert 'role="alert"' in body  # the invalid choice is said, not silently dropped
    assert _names(client.get(INBOX)) == ["Own Fan"]


def test_chatter_sees_only_assigned_creators_conversations(world, client_for):
    _conversation(world.creator, name="Assigned Fan", waiting_minutes=1)
    hidden = _conversation(world.other_creator, name="Unassigned Fan", waiting_minutes=1)
    client = client_for(world.chatter)
    body = client.get(INBOX).content.decode()
    assert _names(client.get(INBOX)) == ["Assigned Fan"]
    assert "Unassigned Fan" not in body and "Velvet Nova" not in body
    assert client.get(f"/inbox/c/{hidden.pk}/").status_code == 404
    assert client.post(f"/inbox/c/{hidden.pk}/send/", {"text": "hi"}).status_code == 404


def test_list_is_paginated_by_fifty_and_keeps_the_filters(world, client_for):
    for number in range(55):
        _conversation(world.creator, name=f"Fan {number:02d}", value=str(100 - number), waiting_minutes=5)
    client = client_for(world.owner)
    first = client.get(INBOX, {"waiting": "on"})
    assert len(_names(first)) == 50
    assert "Page 1 of 2" in first.content.decode()
    assert "?waiting=on&amp;page=2" in first.content.decode()
    second = client.get(INBOX, {"waiting": "on", "page": 2})
    assert _names(second) == [f"Fan {n}" for n in range(50, 55)]


@pytest.mark.parametrize("count", [3, 60])
def test_list_query_count_does_not_grow(world, client_for, django_assert_max_num_queries, count):
    for number in range(count):
        conversation = _conversation(world.creator, name=f"Fan {number}", value=str(number), waiting_minutes=number)
        FanTagFactory(fan=conversation.fan, name=f"tag{number % 5}")
        if number % 2:
            Conversation.objects.filter(pk=conversation.pk).update(
                locked_by=world.manager.user, locked_until=timezone.now() + timedelta(seconds=60)
            )
    SegmentFactory(agency=world.agency, name="Whales")
    client = client_for(world.chatter)
    client.get(INBOX)  # session and caches warm
    with django_assert_max_num_queries(11):
        response = client.get(INBOX, {"tag": "tag1"} if count == 60 else {})
    assert response.status_code == 200
    with django_assert_max_num_queries(11):
        client.get(INBOX)


def test_htmx_request_gets_only_the_list(world, client_for):
    _conversation(world.creator, name="Fragment Fan", waiting_minutes=1)
    response = client_for(world.owner).get(INBOX, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="inbox-list">')
    assert "Fragment Fan" in body and "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_a_late_fan_message_leaves_the_answered_fan_where_the_reply_put_them(world, client_for):
    """A message the fan wrote before the reply, synced late: the push it sends makes open
    inboxes fetch the list again (inbox.js), and the list they get still shows the reply last
    and the fan answered, below a fan who is really waiting."""
    _conversation(world.creator, name="Really Waiting", waiting_minutes=2)
    fan = FanFactory(
        creator=world.creator, display_name="Answered Whale", total_spent=Decimal("900"), spent_tips=Decimal("900")
    )
    asked = services.message_receive(fan=fan, text="are you online?")
    thread = Conversation.objects.get(fan=fan)
    services.message_send(membership=world.owner, conversation=thread, text="Right here", seen_message_count=1)
    pushed = OutboxEvent.objects.filter(kind="inbox.changed").count()
    services.message_receive(
        fan=fan, text="hello?", platform_message_id="late", at=asked.created_at - timedelta(minutes=3)
    )
    assert OutboxEvent.objects.filter(kind="inbox.changed").count() == pushed + 1
    response = client_for(world.owner).get(INBOX, HTTP_HX_REQUEST="true")
    assert _names(response) == ["Really Waiting", "Answered Whale"]
    body = response.content.decode()
    assert '<span class="muted">You: </span>Right here' in body and "hello?" not in body
    assert _names(client_for(world.owner).get(INBOX, {"waiting": "on"})) == ["Really Waiting"]
    history = client_for(world.owner).get(f"/inbox/c/{thread.pk}/").content.decode()
    assert history.index("hello?") < history.index("are you online?") < history.index("Right here")


def test_empty_inbox_explains_how_fans_arrive(world, client_for):
    body = client_for(world.owner).get(INBOX).content.decode()
    assert "No fans yet" in body
    assert "simulate_fans" in body
    assert '<a href="/fans/import/">import them from a CSV file</a>' in body
    chatter = client_for(world.chatter).get(INBOX).content.decode()
    assert "No fans yet" in chatter and 'href="/fans/import/"' not in chatter  # they may not import


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(INBOX)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- A conversation ----------------------------------------------------------------------------


def test_opening_a_conversation_marks_it_read_and_takes_the_lock(world, client_for):
    conversation = _conversation(world.creator, name="Reader", waiting_minutes=3)
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=3)
    _page(client_for(world.chatter), conversation)
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    assert conversation.locked_by_id == world.chatter.user_id
    assert conversation.locked_until > timezone.now()
    assert conversation.needs_reply  # read, not answered


def test_lock_is_shown_to_another_member_who_does_not_take_it(world, client_for):
    conversation = _conversation(world.creator, name="Locked Fan", waiting_minutes=3)
    world.chatter.user.full_name = "Anna Berg"
    world.chatter.user.save()
    _page(client_for(world.chatter), conversation)
    body = _page(client_for(world.manager), conversation).content.decode()
    assert "Anna Berg" not in body.split("conversation-lock")[0]
    assert "Anna is answering" in body
    conversation.refresh_from_db()
    assert conversation.locked_by_id == world.chatter.user_id
    # The holder's own page shows no warning.
    assert "is answering" not in _page(client_for(world.chatter), conversation).content.decode()


def test_viewer_reads_but_has_no_composer_and_takes_no_lock(world, client_for):
    conversation = _conversation(world.creator, name="Viewed Fan", waiting_minutes=3)
    body = _page(client_for(world.viewer), conversation).content.decode()
    assert 'id="composer"' not in body
    assert "can read this conversation but not answer it" in body
    assert "Add note" not in body
    conversation.refresh_from_db()
    assert conversation.locked_by_id is None


def test_history_of_exactly_two_pages_ends_without_a_link_to_nothing(world, client_for):
    conversation = _conversation(world.creator, name="Even", waiting_minutes=1)
    start = timezone.now() - timedelta(hours=2)
    for number in range(60):
        MessageFactory(
            conversation=conversation, text=f"message number {number:02d}", created_at=start + timedelta(minutes=number)
        )
    client = client_for(world.owner)
    body = _page(client, conversation).content.decode()
    assert re.findall(r"message number (\d\d)", body) == [f"{n:02d}" for n in range(30, 60)]
    earliest = Message.objects.get(text="message number 30")
    older = client.get(f"/inbox/c/{conversation.pk}/history/", {"before_id": earliest.pk}, HTTP_HX_REQUEST="true")
    older = older.content.decode()
    assert re.findall(r"message number (\d\d)", older) == [f"{n:02d}" for n in range(30)]
    assert "Load earlier messages" not in older and "No messages yet" not in older


def test_history_is_paged_backwards_newest_last(world, client_for):
    conversation = _conversation(world.creator, name="Chatty", waiting_minutes=1)
    start = timezone.now() - timedelta(hours=2)
    for number in range(35):
        MessageFactory(
            conversation=conversation, text=f"message number {number:02d}", created_at=start + timedelta(minutes=number)
        )
    client = client_for(world.owner)
    body = _page(client, conversation).content.decode()
    shown = re.findall(r"message number (\d\d)", body)
    assert shown == [f"{n:02d}" for n in range(5, 35)]
    earliest = Message.objects.get(text="message number 05")
    assert f"before_id={earliest.pk}" in body
    assert "Load earlier messages" in body
    older = client.get(f"/inbox/c/{conversation.pk}/history/", {"before_id": earliest.pk}, HTTP_HX_REQUEST="true")
    assert re.findall(r"message number (\d\d)", older.content.decode()) == [f"{n:02d}" for n in range(5)]
    assert "Load earlier messages" not in older.content.decode()
    # Without JavaScript the same link opens the page at that point.
    no_js = client.get(f"/inbox/c/{conversation.pk}/", {"before_id": earliest.pk}).content.decode()
    assert re.findall(r"message number (\d\d)", no_js) == [f"{n:02d}" for n in range(5)]
    assert client.get(f"/inbox/c/{conversation.pk}/history/", {"before_id": "junk"}).status_code == 200


def test_outbound_messages_show_status_source_and_sender(world, client_for):
    conversation = _conversation(world.creator, name="Status Fan", waiting_minutes=1)
    world.manager.user.full_name = "Mia Stone"
    world.manager.user.save()
    common = {"conversation": conversation, "direction": "out", "sent_by": world.manager.user}
    MessageFactory(**common, source=Source.AI_DRAFT, status=MessageStatus.SENT, text="from a draft")
    MessageFactory(**common, source=Source.TEMPLATE, status=MessageStatus.QUEUED, text="from a template")
    MessageFactory(
        **common, source=Source.HUMAN, status=MessageStatus.FAILED, error="Fan blocked the creator", text="typed"
    )
    body = _page(client_for(world.owner), conversation).content.decode()
    assert ">AI draft</span>" in body and ">Template</span>" in body and ">Typed</span>" in body
    assert ">Sent</span>" in body and ">Queued</span>" in body and ">Failed</span>" in body
    assert "Fan blocked the creator" in body
    assert "Mia" in body


def test_sidebar_shows_value_spend_split_purchases_and_subscription(world, client_for):
    world.creator.currency = "EUR"
    world.creator.save(update_fields=["currency"])
    fan = FanFactory(
        creator=world.creator,
        display_name="Side Bar",
        spent_subscriptions=Decimal("30.00"),
        spent_tips=Decimal("20.00"),
        spent_ppv=Decimal("45.00"),
        spent_messages=Decimal("5.00"),
        total_spent=Decimal("100.00"),
        ppv_offered=4,
        ppv_bought=3,
        renew_on=False,
        subscription_expires_at=timezone.now() + timedelta(days=9),
    )
    conversation = ConversationFactory(fan=fan)
    PurchaseFactory(fan=fan, kind="ppv", amount=Decimal("15.00"))
    MessageFactory(
        conversation=conversation, direction=Direction.OUTBOUND, source=Source.HUMAN, status=MessageStatus.SENT,
        media_count=1, ppv_price=Decimal("15.00"),
    )  # fmt: skip
    FanNote.objects.create(agency=world.agency, fan=fan, author=world.owner.user, text="Loves cats")
    FanTagFactory(fan=fan, name="cats")
    client = client_for(world.owner)
    body = _page(client, conversation).content.decode()
    for expected in ("100.00 EUR", "30.00 EUR", "20.00 EUR", "45.00 EUR", "5.00 EUR", "75%", "3 of 4",
                     "PPV unlock · 15.00", "PPV 15.00 EUR", "Loves cats", ">cats<", "High", "ends"):  # fmt: skip
        assert expected in body, expected
    assert "$" not in body
    assert "100.00 EUR" in client.get("/inbox/").content.decode()  # the fan's value in the list


def test_notes_and_tags_are_saved_from_the_sidebar(world, client_for):
    conversation = _conversation(world.creator, name="Notable", waiting_minutes=1)
    client = client_for(world.chatter)
    response = client.post(f"/inbox/c/{conversation.pk}/note/", {"text": "Birthday in May"})
    assert response.status_code == 302
    assert FanNote.objects.get(fan=conversation.fan).text == "Birthday in May"
    fragment = client.post(f"/inbox/c/{conversation.pk}/tags/", {"tags": "VIP, cosplay, vip"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and ">cosplay<" in fragment.content.decode()
    assert sorted(FanTag.objects.filter(fan=conversation.fan).values_list("name", flat=True)) == ["cosplay", "vip"]
    empty = client.post(f"/inbox/c/{conversation.pk}/note/", {"text": "   "})
    assert empty.status_code == 200 and "This field is required" in empty.content.decode()
    assert client_for(world.viewer).post(f"/inbox/c/{conversation.pk}/note/", {"text": "x"}).status_code == 403
    assert FanNote.objects.count() == 1


def test_outsider_gets_404_everywhere(world, client_for):
    conversation = _conversation(world.creator, name="Private Fan", waiting_minutes=1)
    rival = build_world("Rival")
    client = client_for(rival.owner)
    for url in (f"/inbox/c/{conversation.pk}/", f"/inbox/c/{conversation.pk}/history/"):
        assert client.get(url).status_code == 404
    for url in ("send", "note", "tags", "drafts"):
        assert client.post(f"/inbox/c/{conversation.pk}/{url}/", {"text": "hi", "tags": "x"}).status_code == 404
    assert "Private Fan" not in client.get(INBOX).content.decode()
    assert Message.objects.count() == 0


# --- The composer -------------------------------------------------------------------------------


def _send(client, conversation, fields: dict, **extra):
    return client.post(f"/inbox/c/{conversation.pk}/send/", fields, **extra)


def test_composer_shows_limit_templates_and_a_fresh_key(world, client_for):
    conversation = _conversation(world.creator, name="Composer Fan", waiting_minutes=1)
    TemplateFactory(agency=world.agency, name="Warm welcome")
    TemplateFactory(agency=world.agency, creator=world.other_creator, name="Other creator's")
    client = client_for(world.chatter)
    body = _page(client, conversation).content.decode()
    assert 'data-limit="1000"' in body and "/ 1000 characters" in body
    assert "Warm welcome" in body and "Other creator" not in body
    first, second = _composer_fields(_page(client, conversation)), _composer_fields(_page(client, conversation))
    assert len(first["idempotency_key"]) == 32 and first["idempotency_key"] != second["idempotency_key"]
    assert first["seen_message_count"] == str(conversation.message_count)


def test_send_queues_a_message_and_a_delivery(world, client_for, django_capture_on_commit_callbacks):
    conversation = _conversation(world.creator, name="Sendee", waiting_minutes=1)
    _inbound(conversation)
    client = client_for(world.chatter)
    fields = _composer_fields(_page(client, conversation))
    with django_capture_on_commit_callbacks(execute=False):
        response = _send(client, conversation, {**fields, "text": "Hey you, thanks for writing!", "media_count": "0"})
    assert response.status_code == 302 and response["Location"] == f"/inbox/c/{conversation.pk}/"
    message = Message.objects.get(direction="out")
    assert message.status == MessageStatus.QUEUED
    assert message.source == Source.HUMAN
    assert message.sent_by == world.chatter.user
    assert message.idempotency_key == fields["idempotency_key"]
    delivery = Delivery.objects.get(agency=world.agency)
    assert delivery.idempotency_key == fields["idempotency_key"] and delivery.text == message.text
    conversation.refresh_from_db()
    assert not conversation.needs_reply
    assert conversation.locked_by_id is None  # answered: the lock is released for colleagues
    follow = client.get(f"/inbox/c/{conversation.pk}/").content.decode()
    assert "Hey you, thanks for writing!" in follow and ">Queued</span>" in follow


def test_htmx_send_answers_fresh_composer_and_history(world, client_for):
    conversation = _conversation(world.creator, name="Htmx Fan", waiting_minutes=1)
    client = client_for(world.chatter)
    fields = _composer_fields(_page(client, conversation))
    response = _send(client, conversation, {**fields, "text": "Quick answer"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="composer"' in body and 'id="conversation-history"' in body and body.count('hx-swap-oob="true"') >= 2
    assert "Quick answer" in body
    new_key = re.search(r'name="idempotency_key" value="([^"]+)"', body).group(1)
    assert new_key != fields["idempotency_key"]
    assert re.search(r'name="seen_message_count" value="(\d+)"', body).group(1) == "1"


def test_two_members_answer_at_once_the_second_is_told_and_nothing_of_theirs_is_stored(world, client_for):
    conversation = _conversation(world.creator, name="Contested", waiting_minutes=1)
    world.manager.user.email = "mia@velvet.example"
    world.manager.user.save()
    chatter, manager = client_for(world.chatter), client_for(world.manager)
    chatter_fields = _composer_fields(_page(chatter, conversation))
    manager_fields = _composer_fields(_page(manager, conversation))
    assert _send(manager, conversation, {**manager_fields, "text": "Manager was first"}).status_code == 302
    response = _send(chatter, conversation, {**chatter_fields, "text": "Chatter was second"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "mia@velvet.example just answered this fan" in body
    assert "Chatter was second</textarea>" in body  # the typed text is kept
    assert "Manager was first" in body  # the colleague's answer is in the history to read
    assert list(Message.objects.values_list("text", flat=True)) == ["Manager was first"]
    assert Delivery.objects.count() == 1
    # Having read it, the second member may still send: the form now knows the new count.
    fields = _composer_fields(response)
    assert fields["seen_message_count"] == "1"
    assert _send(chatter, conversation, {**fields, "text": "Chatter adds"}).status_code == 302
    assert Message.objects.filter(direction="out").count() == 2


def test_one_member_answering_from_two_tabs_is_told_it_was_them(world, client_for):
    conversation = _conversation(world.creator, name="Two tabs", waiting_minutes=1)
    client = client_for(world.chatter)
    first_tab = _composer_fields(_page(client, conversation))
    second_tab = _composer_fields(_page(client, conversation))  # a new idempotency key of its own
    assert _send(client, conversation, {**first_tab, "text": "From the first tab"}).status_code == 302
    body = _send(client, conversation, {**second_tab, "text": "From the second tab"}).content.decode()
    assert "You just answered this fan" in body
    assert list(Message.objects.values_list("text", flat=True)) == ["From the first tab"]


def test_double_submit_with_the_same_key_sends_one_message(world, client_for):
    conversation = _conversation(world.creator, name="Double", waiting_minutes=1)
    client = client_for(world.chatter)
    fields = {**_composer_fields(_page(client, conversation)), "text": "Only once please"}
    assert _send(client, conversation, fields).status_code == 302
    assert _send(client, conversation, fields).status_code == 302
    assert Message.objects.filter(direction="out").count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "x" * 1001}, "This message is 1001 characters; OnlyFans allows 1000."),
        ({"text": "   "}, "Write a message (or attach media) before sending."),
        ({"text": "Unlock this", "ppv_price": "0.50", "media_count": "1"}, "PPV prices go from"),
        ({"text": "Unlock this", "ppv_price": "abc"}, "Enter a number."),
        ({"text": "Want my upskirt pics tonight?"}, "Not sent:"),
    ],
)
def test_bad_messages_are_form_errors_and_keep_the_text(world, client_for, fields, error):
    conversation = _conversation(world.creator, name="Bad Input", waiting_minutes=1)
    client = client_for(world.chatter)
    response = _send(client, conversation, {**_composer_fields(_page(client, conversation)), **fields})
    body = response.content.decode()
    assert response.status_code == 200
    assert error in body
    if fields["text"].strip():
        assert f"{fields['text']}</textarea>" in body
    assert not Message.objects.filter(direction="out").exists()
    assert Delivery.objects.count() == 0


def test_missing_or_forged_hidden_fields_are_errors_not_500(world, client_for):
    conversation = _conversation(world.creator, name="Forged", waiting_minutes=1)
    client = client_for(world.chatter)
    response = _send(client, conversation, {"text": "hi", "seen_message_count": "<b>", "draft": "x"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_viewer_cannot_send(world, client_for):
    conversation = _conversation(world.creator, name="No Viewer", waiting_minutes=1)
    fields = _composer_fields(_page(client_for(world.owner), conversation))
    response = _send(client_for(world.viewer), conversation, {**fields, "text": "viewer speaking"})
    assert response.status_code == 403
    assert not Message.objects.filter(direction="out").exists()


def test_template_fills_the_composer_without_sending_and_send_records_it(world, client_for):
    conversation = _conversation(world.creator, name="Tamsin Lee", waiting_minutes=1)
    template = TemplateFactory(agency=world.agency, name="Hello", text="Hey {fan.first_name|babe}, missed you!")
    client = client_for(world.chatter)
    fields = _composer_fields(_page(client, conversation))
    filled = _send(client, conversation, {**fields, "action": "template", "template": template.pk, "text": ""})
    assert filled.status_code == 200
    assert "Hey Tamsin, missed you!</textarea>" in filled.content.decode()
    assert not Message.objects.filter(direction="out").exists()
    sent = _send(client, conversation, {**fields, "template": template.pk, "text": "Hey Tamsin, missed you so much!"})
    assert sent.status_code == 302
    message = Message.objects.get(direction="out")
    assert message.source == Source.TEMPLATE and message.template == template
    assert message.suggested_text == "Hey Tamsin, missed you!" and Decimal("0") < message.edit_ratio < Decimal("0.5")


def test_a_used_draft_fills_the_composer_and_the_send_records_ai_source_and_edit_ratio(world, client_for):
    conversation = _conversation(world.creator, name="Drafted", waiting_minutes=1)
    draft = Draft.objects.create(
        agency=world.agency,
        creator=world.creator,
        conversation=conversation,
        text="Aww thank you babe, that made my day",
        score=82,
        factors={"uses name": 20, "length": 10},
        suggestions=["Mention the last set they bought."],
    )
    client = client_for(world.chatter)
    page = client.get(f"/inbox/c/{conversation.pk}/", {"draft": draft.pk}).content.decode()
    assert "Personalization 82/100" in page and "Mention the last set they bought." in page
    assert "Aww thank you babe, that made my day</textarea>" in page
    fields = _composer_fields(client.get(f"/inbox/c/{conversation.pk}/", {"draft": draft.pk}))
    assert fields["draft"] == str(draft.pk)
    response = _send(client, conversation, {**fields, "text": "Aww thank you Drafted, that made my whole day"})
    assert response.status_code == 302
    message = Message.objects.get(direction="out")
    assert message.source == Source.AI_DRAFT and message.draft == draft
    assert message.suggested_text == draft.text and message.edit_ratio > 0
    draft.refresh_from_db()
    assert draft.status == "sent"


def test_a_draft_of_another_conversation_is_not_used(world, client_for):
    conversation = _conversation(world.creator, name="Mine", waiting_minutes=1)
    other = _conversation(world.creator, name="Theirs", waiting_minutes=1)
    draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=other, text="Not for you", score=50
    )
    client = client_for(world.chatter)
    page = client.get(f"/inbox/c/{conversation.pk}/", {"draft": draft.pk}).content.decode()
    assert "Not for you" not in page
    fields = _composer_fields(_page(client, conversation))
    response = _send(client, conversation, {**fields, "draft": draft.pk, "text": "typed"})
    assert "That draft is no longer available" in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_live_refresh_of_the_history_marks_read_and_carries_the_lock_banner(world, client_for):
    conversation = _conversation(world.creator, name="Refreshed", waiting_minutes=1)
    world.manager.user.full_name = "Anna Keller"
    world.manager.user.save()
    _page(client_for(world.manager), conversation)  # the manager holds the lock
    _inbound(conversation, text="one more thing", minutes_ago=0)
    response = client_for(world.chatter).get(f"/inbox/c/{conversation.pk}/history/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<ol id="conversation-history"')
    assert "one more thing" in body
    assert 'id="conversation-lock" aria-live="polite" hx-swap-oob="true"' in body and "Anna is answering" in body
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


@pytest.mark.parametrize("count", [3, 60])
def test_conversation_query_count_does_not_grow(world, client_for, django_assert_max_num_queries, count):
    conversation = _conversation(world.creator, name="Busy Fan", value="120", waiting_minutes=2)
    for number in range(count):
        direction = "out" if number % 2 else "in"
        MessageFactory(
            conversation=conversation,
            direction=direction,
            source="human" if direction == "out" else "fan",
            sent_by=world.manager.user if direction == "out" else None,
        )
        PurchaseFactory(fan=conversation.fan)
        FanNote.objects.create(agency=world.agency, fan=conversation.fan, author=world.owner.user, text=f"n{number}")
        FanTagFactory(fan=conversation.fan, name=f"tag{number}")
        TemplateFactory(agency=world.agency)
    client = client_for(world.chatter)
    _page(client, conversation)
    with django_assert_max_num_queries(22):  # one of them writes the lock's inbox.changed event
        _page(client, conversation)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "<1 min"), (12, "12 min"), (60, "1 h"), (125, "2 h 5 min"), (1440, "1 day"), (4000, "2 days")],
)
def test_waiting_time_reads_short(minutes, text):
    from apps.messaging.views.inbox import waited

    now = timezone.now()
    assert waited(now - timedelta(minutes=minutes, seconds=30), now) == text


@pytest.fixture
def builtin_ai(settings):
    from apps.ai.ledger import ledger
    from apps.ai.registry import registry

    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL"):
        setattr(settings, key, "")
    settings.DEFAULT_AI_PROVIDER = ""
    registry.reset()
    ledger.discard()
    yield
    ledger.discard()
    registry.reset()


def test_drafts_without_javascript_are_written_then_shown_and_discarded(world, client_for, builtin_ai):
    conversation = _conversation(world.creator, name="No Script", waiting_minutes=1)
    _inbound(conversation, text="hey you")
    client = client_for(world.chatter)
    response = client.post(f"/inbox/c/{conversation.pk}/drafts/", {"kind": "reply"})
    assert response.status_code == 302 and response["Location"].endswith("#drafts")
    drafts = list(Draft.objects.filter(conversation=conversation, status="pending"))
    assert len(drafts) == 3
    page = _page(client, conversation).content.decode()
    assert page.count('class="draft-card"') == 3 and "Personalization" in page
    assert f"?draft={drafts[0].pk}#composer" in page
    assert not Message.objects.filter(direction="out").exists()  # nothing sent
    discarded = client.post(f"/inbox/drafts/{drafts[0].pk}/discard/")
    assert discarded.status_code == 302
    drafts[0].refresh_from_db()
    assert drafts[0].status == "discarded"
    assert _page(client, conversation).content.decode().count('class="draft-card"') == 2
    assert client_for(world.viewer).post(f"/inbox/c/{conversation.pk}/drafts/", {"kind": "reply"}).status_code == 403
    assert client_for(world.viewer).post(f"/inbox/drafts/{drafts[1].pk}/discard/").status_code == 403


def test_discarding_a_sent_draft_is_a_message_not_an_error(world, client_for):
    conversation = _conversation(world.creator, name="Sent Draft", waiting_minutes=1)
    draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=conversation, text="hi", score=50, status="sent"
    )
    response = client_for(world.chatter).post(f"/inbox/drafts/{draft.pk}/discard/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "cannot be discarded" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "sent"


def test_hostile_text_everywhere_on_the_inbox_renders_inert(world, client_for):
    """Every stored payload of the XSS corpus (tests/xss/payloads.py) in every free text the inbox
    shows (fan names, messages, previews, notes, tags, templates, drafts, a colleague's name) is
    text on the list, the conversation, its fragments and a draft card, never markup."""
    from tests.xss.checker import scan_html
    from tests.xss.payloads import PAYLOADS, payload_text, storable

    client = client_for(world.owner)
    world.manager.user.full_name = payload_text(1, "holder")
    world.manager.user.save()
    for n in [n for n in range(len(PAYLOADS)) if storable(n)]:
        text = payload_text(n, "x")

        def fit(limit: int, text=text, n=n) -> str:  # a column too short for the payload gets plain text
            return text if len(text) <= limit else f"plain {n}"

        fan = FanFactory(creator=world.creator, display_name=text, username=fit(80), total_spent=Decimal("0"))
        conversation = ConversationFactory(
            fan=fan, needs_reply=True, waiting_since=timezone.now(), last_message_at=timezone.now(),
            last_message_preview=fit(140), locked_by=world.manager.user,
            locked_until=timezone.now() + timedelta(seconds=60),
        )  # fmt: skip
        MessageFactory(conversation=conversation, text=text)
        MessageFactory(
            conversation=conversation, direction="out", source="human", status="failed", error=fit(300), text=text
        )
        FanNote.objects.create(agency=world.agency, fan=fan, author=world.manager.user, text=text)
        FanTagFactory(fan=fan, name=fit(40))
        TemplateFactory(agency=world.agency, name=fit(80) if len(text) <= 80 else f"{n} plain", text="Hi")
        Draft.objects.create(
            agency=world.agency, creator=world.creator, conversation=conversation, text=text, score=40,
            factors={fit(60): 5}, suggestions=[text], suggested_price=Decimal("9.00"), price_reason=fit(300),
        )  # fmt: skip
        pages = [
            client.get(f"/inbox/c/{conversation.pk}/"),
            client.get(f"/inbox/c/{conversation.pk}/history/", HTTP_HX_REQUEST="true"),
            client.get(INBOX, {"q": fit(80)}, HTTP_HX_REQUEST="true"),
        ]
        for response in pages:
            assert response.status_code == 200
            scan = scan_html(response.content.decode())
            assert not scan.findings, (n, scan.findings)
        assert f"xss-17-{n}-x" in scan_html(pages[0].content.decode()).shown, n
    listing = client.get(INBOX)
    assert not scan_html(listing.content.decode()).findings
