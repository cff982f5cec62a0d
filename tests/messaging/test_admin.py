"""Admin of the fan CRM: every page loads with data, changelists do not grow with their rows,
big foreign keys are raw ids, and the audit data is read-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.messaging import services
from apps.messaging.models import (
    Conversation,
    Draft,
    Fan,
    FanImport,
    FanNote,
    FanRules,
    FanTag,
    Message,
    MessageTemplate,
    Purchase,
    Segment,
)
from tests.accounts.factories import UserFactory
from tests.messaging.api_helpers import waiting_conversation
from tests.messaging.factories import FanTagFactory, PurchaseFactory, SegmentFactory, TemplateFactory

MODELS = [Conversation, Draft, Fan, FanImport, FanNote, FanRules, FanTag, Message, MessageTemplate, Purchase, Segment]


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(
        UserFactory(is_staff=True, is_superuser=True), backend="django.contrib.auth.backends.ModelBackend"
    )
    return client


def _rows(world, n: int) -> None:
    FanRules.objects.get_or_create(agency=world.agency)
    for index in range(n):
        conversation = waiting_conversation(world.creator if index % 2 else world.other_creator)
        fan = conversation.fan
        services.message_send(membership=world.owner, conversation=conversation, text=f"hello {index}")
        FanTagFactory(fan=fan, name=f"t{index}")
        FanNote.objects.create(agency=world.agency, fan=fan, author=world.owner.user, text=f"note {index}")
        PurchaseFactory(fan=fan)
        Draft.objects.create(agency=world.agency, creator=fan.creator, conversation=conversation, text="d", score=5)
        TemplateFactory(agency=world.agency, creator=fan.creator, created_by=world.owner.user)
        SegmentFactory(agency=world.agency, creator=fan.creator, created_by=world.owner.user)
        FanImport.objects.create(agency=world.agency, creator=fan.creator, kind="fans", filename=f"{index}.csv")


def _changelist(model) -> str:
    return reverse(f"admin:messaging_{model._meta.model_name}_changelist")


def test_every_messaging_model_is_registered():
    assert [model.__name__ for model in MODELS if model not in admin.site._registry] == []


def test_every_page_loads_with_data(staff, world):
    _rows(world, 2)
    for model in MODELS:
        assert staff.get(_changelist(model)).status_code == 200, model.__name__
        assert staff.get(_changelist(model), {"q": "fan"}).status_code == 200, model.__name__
        obj = model.objects.first()
        change = reverse(f"admin:messaging_{model._meta.model_name}_change", args=[obj.pk])
        assert staff.get(change).status_code == 200, model.__name__


def test_changelists_do_not_grow_with_their_rows(staff, world):
    _rows(world, 1)
    counts_small = {}
    for model in MODELS:
        with CaptureQueriesContext(connection) as queries:
            staff.get(_changelist(model))
        counts_small[model.__name__] = len(queries)
    _rows(world, 6)
    for model in MODELS:
        with CaptureQueriesContext(connection) as queries:
            staff.get(_changelist(model))
        assert len(queries) == counts_small[model.__name__], model.__name__


def test_big_foreign_keys_are_raw_ids_not_select_boxes(staff, world):
    _rows(world, 3)
    note = FanNote.objects.first()
    page = staff.get(reverse("admin:messaging_fannote_change", args=[note.pk])).content.decode()
    assert 'name="fan"' in page and "vForeignKeyRawIdAdminField" in page
    assert "<select" not in page.split('name="fan"')[0][-300:]
    for fan in Fan.objects.all():
        assert f'<option value="{fan.pk}"' not in page


def test_messages_and_purchases_are_read_only(staff, world):
    _rows(world, 1)
    message = Message.objects.filter(direction="out").first()
    url = reverse("admin:messaging_message_change", args=[message.pk])
    page = staff.get(url).content.decode()
    assert message.sent_by_email in page and 'name="text"' not in page
    staff.post(url, {"text": "rewritten"})
    assert Message.objects.get(pk=message.pk).text == message.text
    delete = reverse("admin:messaging_message_delete", args=[message.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    assert Message.objects.filter(pk=message.pk).exists()
    purchase = Purchase.objects.first()
    assert (
        staff.post(reverse("admin:messaging_purchase_delete", args=[purchase.pk]), {"post": "yes"}).status_code == 403
    )
    fan = purchase.fan
    fan_page = staff.get(reverse("admin:messaging_fan_change", args=[fan.pk])).content.decode()
    assert 'name="total_spent"' not in fan_page and 'name="username"' in fan_page
