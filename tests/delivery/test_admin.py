"""The delivery admin: read-only lists with filters and search, and the dead-letter re-queue action."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.tasks import deliver
from tests.accounts.factories import UserFactory
from tests.delivery.conftest import enqueue


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(
        UserFactory(is_staff=True, is_superuser=True), backend="django.contrib.auth.backends.ModelBackend"
    )
    return client


def test_both_models_are_registered_and_labelled(world, staff_client):
    assert Delivery in admin.site._registry and SimulatedOutboundMessage in admin.site._registry
    assert "simulated" in str(SimulatedOutboundMessage._meta.verbose_name_plural)
    delivery = enqueue(world, recipient_id="fan-velvet")
    deliver(delivery.pk)
    for model in (Delivery, SimulatedOutboundMessage):
        url = reverse(f"admin:delivery_{model._meta.model_name}_changelist")
        page = staff_client.get(url, {"q": "fan-velvet"})
        assert page.status_code == 200 and "fan-velvet" in page.content.decode()
    page = staff_client.get(reverse("admin:delivery_delivery_changelist"), {"status": "sent", "queue": "interactive"})
    assert page.status_code == 200
    assert (
        "simulated platform"
        in staff_client.get(reverse("admin:delivery_simulatedoutboundmessage_changelist")).content.decode()
    )
    change = staff_client.get(reverse("admin:delivery_delivery_change", args=[delivery.pk]))
    assert change.status_code == 200 and 'name="status"' not in change.content.decode()  # read-only


def test_the_requeue_action_sends_dead_deliveries_again_and_leaves_the_others(world, staff_client, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    settings.DELIVERY_MAX_ATTEMPTS = 1
    dead = enqueue(world, recipient_id="fail-retry-1-fan")
    sent = enqueue(world)
    assert (deliver(dead.pk), deliver(sent.pk)) == ("dead", "sent")
    response = staff_client.post(
        reverse("admin:delivery_delivery_changelist"),
        {"action": "requeue_dead", "_selected_action": [dead.pk, sent.pk]},
        follow=True,
    )
    assert "Re-queued 1 dead delivery. 1 not dead, left alone." in response.content.decode()
    assert Delivery.objects.get(pk=dead.pk).status == "pending"
    assert deliver(dead.pk) == "sent"
    assert Delivery.objects.get(pk=sent.pk).attempts == 1


def test_staff_without_the_change_permission_get_no_requeue_action(world, db):
    client = Client()
    client.force_login(UserFactory(is_staff=True), backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("admin:delivery_delivery_changelist")).status_code == 403


def test_the_staff_requeue_service_refuses_a_member(world):
    from django.core.exceptions import PermissionDenied

    from apps.delivery.services import delivery_requeue_for_staff

    with pytest.raises(PermissionDenied):
        delivery_requeue_for_staff(user=world.owner.user, delivery_ids=[1])


def test_the_list_shows_each_platforms_breaker_and_the_rate_in_force_of_busy_accounts(world, staff_client, settings):
    settings.DELIVERY_RATE_LIMITS = {
        "account": {"limit": 10, "seconds": 1, "burst": 1},
        "creator": {"limit": 100, "seconds": 1},
        "agency": {"limit": 100, "seconds": 1},
        "global": {"limit": 1000, "seconds": 1},
    }
    url = reverse("admin:delivery_delivery_changelist")
    assert "No delivery is waiting to be sent." in staff_client.get(url).content.decode()
    assert deliver(enqueue(world, recipient_id="fail-ratelimit-30-fan").pk) == "failed"  # a 429 halves the rate
    enqueue(world, recipient_id="fan-waiting")
    page = staff_client.get(url).content.decode()
    assert "Circuit breaker per platform" in page and "OnlyFans" in page and "paused (outage)" not in page
    row = page[page.index(world.creator.display_name, page.index("Rate now")) :]
    # Halved, then growing back by itself (to the full rate over five minutes): a slow machine that
    # takes a second to draw the page sees 5.017/s, not 5.000/s.
    slowed = re.search(r"(\d+\.\d{3})/s \(slowed after a 429\)", row[:600])
    assert slowed and 5.0 <= float(slowed.group(1)) < 5.5, row[:600]
    assert "10.000/s" in row[:600]
