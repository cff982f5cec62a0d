from __future__ import annotations

import uuid

import pytest

from apps.delivery.services import delivery_enqueue
from apps.delivery.signals import delivery_status_changed


def enqueue(world, **overrides):
    """delivery_enqueue for the world's first creator, with a fresh key unless one is given."""
    arguments = {
        "agency_id": world.agency.pk,
        "creator_id": world.creator.pk,
        "platform": "onlyfans",
        "recipient_id": "fan-1",
        "text": "Thanks for subscribing, babe!",
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    return delivery_enqueue(**arguments)


@pytest.fixture
def status_events():
    """Every delivery_status_changed sent during the test, as (delivery_id, status, source, source_id)."""
    events = []

    def receiver(sender, *, delivery_id, status, source, source_id, **kwargs):
        events.append((delivery_id, status, source, source_id))

    delivery_status_changed.connect(receiver, dispatch_uid="tests.delivery.status_events")
    yield events
    delivery_status_changed.disconnect(dispatch_uid="tests.delivery.status_events")
