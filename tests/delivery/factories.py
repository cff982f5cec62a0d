from __future__ import annotations

import factory
from django.utils import timezone

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from tests.accounts.factories import CreatorFactory


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A pending delivery, due now. Rows only: use ``delivery_enqueue`` to test the pipeline."""

    class Meta:
        model = Delivery

    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("creator.agency")
    platform = "onlyfans"
    recipient_id = factory.Sequence(lambda n: f"fan-{n}")
    text = "Hey you, thanks for subscribing!"
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")
    next_attempt_at = factory.LazyFunction(timezone.now)


class SimulatedOutboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SimulatedOutboundMessage

    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("creator.agency")
    platform = "onlyfans"
    recipient_id = factory.Sequence(lambda n: f"fan-{n}")
    text = "Hey you"
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")
    platform_message_id = factory.Sequence(lambda n: f"sim_{n:024d}")
    received_at = factory.LazyFunction(timezone.now)
