"""Factories for the fan CRM and inbox. Rows are built directly (no services), so tests of the
services start from a known state; use the services to make the changes under test."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from apps.messaging.models import (
    Conversation,
    Direction,
    Fan,
    FanTag,
    Message,
    MessageStatus,
    MessageTemplate,
    Purchase,
    Segment,
    Source,
)
from tests.accounts.factories import CreatorFactory


class FanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fan

    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("creator.agency")
    platform = "onlyfans"
    platform_fan_id = factory.Sequence(lambda n: f"of-{n}")
    username = factory.Sequence(lambda n: f"fan{n}")
    display_name = factory.Faker("first_name")
    subscribed_since = factory.LazyFunction(lambda: timezone.now() - timedelta(days=60))
    last_active_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class FanTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FanTag

    fan = factory.SubFactory(FanFactory)
    agency = factory.SelfAttribute("fan.agency")
    creator = factory.SelfAttribute("fan.creator")
    name = "vip"


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    fan = factory.SubFactory(FanFactory)
    agency = factory.SelfAttribute("fan.agency")
    creator = factory.SelfAttribute("fan.creator")
    fan_value = factory.SelfAttribute("fan.total_spent")


class MessageFactory(factory.django.DjangoModelFactory):
    """An inbound message by default; pass direction=Direction.OUTBOUND, source=Source.HUMAN for ours."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    agency = factory.SelfAttribute("conversation.agency")
    creator = factory.SelfAttribute("conversation.creator")
    fan = factory.SelfAttribute("conversation.fan")
    direction = Direction.INBOUND
    source = Source.FAN
    status = MessageStatus.RECEIVED
    text = factory.Faker("sentence")
    created_at = factory.LazyFunction(timezone.now)


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    fan = factory.SubFactory(FanFactory)
    agency = factory.SelfAttribute("fan.agency")
    creator = factory.SelfAttribute("fan.creator")
    kind = "tip"
    amount = Decimal("10.00")
    purchased_at = factory.LazyFunction(timezone.now)


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    agency = factory.SubFactory("tests.accounts.factories.AgencyFactory")
    name = factory.Sequence(lambda n: f"Template {n}")
    category = "welcome"
    text = "Hey {fan.first_name|babe}, welcome!"


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    agency = factory.SubFactory("tests.accounts.factories.AgencyFactory")
    name = factory.Sequence(lambda n: f"Segment {n}")
    filters = factory.LazyFunction(lambda: {"tiers": ["whale"]})
