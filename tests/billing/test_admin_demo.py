"""Manual billing in the Django admin (the embedded default without Stripe) and the demo's plan."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Agency
from apps.billing import entitlements
from apps.billing.models import Subscription, SubscriptionChange
from tests.accounts.factories import UserFactory
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    staff = UserFactory(is_staff=True, is_superuser=True, full_name="Ops Person")
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    client.staff = staff
    return client


def test_an_admin_assigns_a_plan_by_hand_and_it_applies_at_once(world, staff_client, catalogue,
                                                                  django_capture_on_commit_callbacks):  # fmt: skip
    subscription = Subscription.objects.get(agency=world.agency)
    assert entitlements.entitlements_for(world.agency.pk).plan_code == "agency"  # cached now
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    assert staff_client.get(url).status_code == 200
    form = {
        "agency": world.agency.pk,
        "plan": catalogue["creator"].pk,
        "status": "active",
        "trial_ends_at_0": "",
        "trial_ends_at_1": "",
        "current_period_start_0": "2026-12-01",
        "current_period_start_1": "00:00:00",
        "current_period_end_0": "2026-12-31",
        "current_period_end_1": "00:00:00",
        "note": "Paid by bank transfer",
        "changes-TOTAL_FORMS": "0",
        "changes-INITIAL_FORMS": "0",
        "changes-MIN_NUM_FORMS": "0",
        "changes-MAX_NUM_FORMS": "1000",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription.refresh_from_db()
    assert (subscription.plan.code, subscription.status, subscription.assigned_by) == (
        "creator", "active", staff_client.staff,
    )  # fmt: skip
    change = SubscriptionChange.objects.filter(agency=world.agency).first()
    assert (change.from_plan.code, change.to_plan.code, change.by) == ("agency", "creator", staff_client.staff)
    assert entitlements.entitlements_for(world.agency.pk).plan_code == "creator"


def _admin_form(world, plan, status: str) -> dict:
    return {
        "agency": world.agency.pk, "plan": plan.pk, "status": status,
        "trial_ends_at_0": "", "trial_ends_at_1": "",
        "current_period_start_0": "2026-12-01", "current_period_start_1": "00:00:00",
        "current_period_end_0": "2026-12-31", "current_period_end_1": "00:00:00",
        "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0",
        "changes-MIN_NUM_FORMS": "0", "changes-MAX_NUM_FORMS": "1000",
    }  # fmt: skip


def test_past_due_set_in_the_admin_starts_the_grace_period_and_active_ends_it(world, staff_client, catalogue, settings):
    settings.BILLING_GRACE_DAYS = 7
    subscription = Subscription.objects.get(agency=world.agency)
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    assert staff_client.post(url, _admin_form(world, catalogue["agency"], "past_due")).status_code == 302
    subscription.refresh_from_db()
    assert subscription.past_due_since is not None and subscription.grace_ends_at is not None
    assert "Your last payment failed" in login_client(world.owner).get("/").content.decode()  # the banner
    assert staff_client.post(url, _admin_form(world, catalogue["agency"], "active")).status_code == 302
    subscription.refresh_from_db()
    assert (subscription.past_due_since, subscription.grace_ends_at) == (None, None)
    assert "Your last payment failed" not in login_client(world.owner).get("/").content.decode()


def test_an_admin_form_with_a_bad_period_is_a_form_error(world, staff_client, catalogue):
    subscription = Subscription.objects.get(agency=world.agency)
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    response = staff_client.post(url, {
        "agency": world.agency.pk, "plan": catalogue["creator"].pk, "status": "trialing",
        "trial_ends_at_0": "", "trial_ends_at_1": "",
        "current_period_start_0": "2026-12-31", "current_period_start_1": "00:00:00",
        "current_period_end_0": "2026-12-01", "current_period_end_1": "00:00:00",
        "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0",
        "changes-MIN_NUM_FORMS": "0", "changes-MAX_NUM_FORMS": "1000",
    })  # fmt: skip
    assert response.status_code == 200  # shown again with the constraint's message, nothing saved
    subscription.refresh_from_db()
    assert subscription.plan.code == "agency"


def test_the_demo_agency_is_on_the_agency_plan_active(db, catalogue):
    call_command("seed_demo", "--creators", "3")
    subscription = Subscription.objects.select_related("plan").get(agency=Agency.objects.get())
    assert (subscription.plan.code, subscription.status) == ("agency", "active")
