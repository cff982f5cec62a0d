"""The webhook asks Stripe with no lock held: the event is claimed with a conditional update, the
subscription re-read from Stripe with no transaction open, then applied. A second delivery while
the first is being processed answers 409 (Stripe delivers it again); a claim left by a lost
worker is taken over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.utils import timezone

from apps.billing.models import BillingEvent, Subscription
from apps.billing.stripe_sync import CLAIM_TIMEOUT
from tests.billing.test_stripe import WEBHOOK, subscribe
from tests.fakes.stripe_server import deliver


@pytest.mark.django_db(transaction=True)
def test_stripe_is_asked_with_no_transaction_open_and_no_row_locked(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    stripe_on.set_subscription(subscription["id"], status="past_due")
    event = stripe_on.event("customer.subscription.updated", stripe_on.subscriptions[subscription["id"]])
    webhook_connection = connection  # the Django test client runs the view in this thread
    seen: dict[str, bool] = {}

    def while_stripe_answers(method: str, path: str) -> None:
        if method != "GET" or not path.startswith("/v1/subscriptions/"):
            return
        seen["transaction_open"] = webhook_connection.in_atomic_block
        try:
            # Another worker (this server thread has its own connection) can lock both rows now.
            with transaction.atomic():
                BillingEvent.objects.select_for_update(nowait=True).get(stripe_id=event["id"])
                Subscription.objects.select_for_update(nowait=True).get(agency=world.agency)
            seen["rows_free"] = True
        except DatabaseError:
            seen["rows_free"] = False
        finally:
            connections.close_all()

    stripe_on.on_request = while_stripe_answers
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    assert seen == {"transaction_open": False, "rows_free": True}
    assert Subscription.objects.get(agency=world.agency).status == "past_due"
    stored = BillingEvent.objects.get(stripe_id=event["id"])
    assert stored.processed_at is not None and stored.agency_id == world.agency.pk


@pytest.mark.django_db
def test_a_delivery_while_another_holds_the_event_is_409_and_a_lost_claim_is_taken_over(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    stripe_on.set_subscription(subscription["id"], status="past_due")
    event = stripe_on.event("customer.subscription.updated", stripe_on.subscriptions[subscription["id"]])
    BillingEvent.objects.create(
        stripe_id=event["id"], type=event["type"], created=timezone.now(), payload=event, claimed_at=timezone.now()
    )
    busy = deliver(Client(), WEBHOOK, event)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "event_in_progress"
    assert Subscription.objects.get(agency=world.agency).status == "active"  # left to the claim's holder

    # The holder died: once its claim is older than CLAIM_TIMEOUT, Stripe's next delivery does it.
    BillingEvent.objects.filter(stripe_id=event["id"]).update(
        claimed_at=timezone.now() - CLAIM_TIMEOUT - timedelta(seconds=1)
    )
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    assert Subscription.objects.get(agency=world.agency).status == "past_due"
    assert BillingEvent.objects.get(stripe_id=event["id"]).processed_at is not None
    assert deliver(Client(), WEBHOOK, event).status_code == 200  # a replay: processed, nothing more
