"""Dunning and read-only agencies as members meet them: a failed payment starts a grace period
with a banner on every page and an email to the owners; after it the agency is read-only on
pages, the API and the AI gateway (reads still work, nothing is deleted), its sending campaigns
pause with the reason; paying lifts it at once. A trial that ended does the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Creator
from apps.ai.types import AIError, AIRequest, Message
from apps.billing import entitlements
from apps.billing.entitlements import check_ai_credits
from apps.billing.models import Subscription
from apps.billing.stripe_sync import dunning_tick
from apps.campaigns import services as campaign_services
from apps.campaigns.models import CampaignStatus
from apps.notifications.models import Notification
from tests.accounts.test_views import VALID_CREATOR
from tests.billing.test_stripe import WEBHOOK, subscribe
from tests.campaigns.conftest import make_campaign
from tests.conftest import login_client
from tests.fakes.stripe_server import deliver
from tests.messaging.api_helpers import error, token_client

pytestmark = pytest.mark.django_db
JSON = "application/json"


def fail_payment(world, fake, subscription):
    fake.set_subscription(subscription["id"], status="past_due")
    invoice = fake.add_invoice(subscription["customer"], 19900, status="open", subscription=subscription["id"])
    assert deliver(Client(), WEBHOOK, fake.event("invoice.payment_failed", invoice)).status_code == 200
    return invoice


def end_grace(world):
    Subscription.objects.filter(agency=world.agency).update(grace_ends_at=timezone.now() - timedelta(minutes=1))
    entitlements.invalidate(world.agency.pk)


def test_a_failed_payment_starts_the_grace_period_with_banner_and_email(
    world, stripe_on, settings, django_capture_on_commit_callbacks
):
    settings.BILLING_GRACE_DAYS = 7
    subscription = subscribe(world, stripe_on)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fail_payment(world, stripe_on, subscription)
    row = Subscription.objects.get(agency=world.agency)
    assert row.status == "past_due"
    assert timedelta(days=6, hours=23) < row.grace_ends_at - timezone.now() <= timedelta(days=7)
    (email,) = mail.outbox  # one owner
    assert email.to == [world.owner.user.email] and "Payment failed" in email.subject
    assert "https://app.huntaze.test/billing/" in email.body and "read-only" in email.body
    owner_page = login_client(world.owner).get("/").content.decode()
    assert "Your last payment failed" in owner_page and "Update payment method" in owner_page
    viewer_page = login_client(world.viewer).get("/").content.decode()
    assert "Your last payment failed" in viewer_page and "Update payment method" not in viewer_page
    # Still writable during the grace period.
    response = login_client(world.owner).post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert response.status_code == 302


def test_after_the_grace_period_writes_are_refused_and_reads_work(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    fail_payment(world, stripe_on, subscription)
    end_grace(world)
    owner = login_client(world.owner)
    refused = owner.post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert refused.status_code == 403
    body = refused.content.decode()
    assert "Your agency is read-only" in body and "payment is past due" in body and 'href="/billing/"' in body
    assert not Creator.objects.filter(display_name=VALID_CREATOR["display_name"]).exists()
    assert owner.get(reverse("accounts:creator-list")).status_code == 200
    api = token_client(world.owner).post("/api/v1/creators", {"display_name": "Nope"}, content_type=JSON)
    assert api.status_code == 403 and error(api)["code"] == "billing_read_only"
    assert error(api)["upgrade_url"] == "/billing/"
    assert token_client(world.owner).get("/api/v1/creators").status_code == 200
    # Paying is still possible: the portal opens.
    assert owner.post(reverse("billing:portal")).status_code == 302
    assert "Update payment method" in owner.get("/").content.decode()


def test_the_ai_gateway_refuses_a_read_only_agency(world):
    Subscription.objects.filter(agency=world.agency).update(
        status="past_due", grace_ends_at=timezone.now() - timedelta(days=1), past_due_since=timezone.now()
    )
    entitlements.invalidate(world.agency.pk)
    request = AIRequest(feature="studio.caption", messages=[Message("user", "hi")], agency_id=world.agency.pk,
                        creator_id=world.creator.pk, user_id=world.owner.user_id)  # fmt: skip
    with pytest.raises(AIError) as refused:
        async_to_sync(check_ai_credits)(request)
    assert "payment is past due" in str(refused.value) and "/billing/" in str(refused.value)


def test_paying_lifts_read_only_at_once(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    invoice = fail_payment(world, stripe_on, subscription)
    end_grace(world)
    stripe_on.set_subscription(subscription["id"], status="active")
    invoice["status"] = "paid"
    assert deliver(Client(), WEBHOOK, stripe_on.event("invoice.paid", invoice)).status_code == 200
    row = Subscription.objects.get(agency=world.agency)
    assert (row.status, row.grace_ends_at, row.past_due_since) == ("active", None, None)
    response = login_client(world.owner).post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert response.status_code == 302
    assert "Your last payment failed" not in login_client(world.owner).get("/").content.decode()


def test_a_trial_that_ended_makes_the_agency_read_only_with_its_own_message(world):
    ended = timezone.now() - timedelta(hours=1)
    Subscription.objects.filter(agency=world.agency).update(status="trialing", trial_ends_at=ended)
    entitlements.invalidate(world.agency.pk)
    refused = login_client(world.manager).post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert refused.status_code == 403 and "free trial has ended" in refused.content.decode()
    assert "Ask an owner" in refused.content.decode()
    page = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert "Your trial has ended and your agency is read-only" in page


def test_a_read_only_agency_pauses_its_sending_campaigns_with_the_reason(
    world, fans, django_capture_on_commit_callbacks
):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        campaign_services.campaign_schedule(membership=world.owner, campaign=campaign)
        campaign_services.campaign_start(campaign_id=campaign.pk)
    Subscription.objects.filter(agency=world.agency).update(status="canceled")
    entitlements.invalidate(world.agency.pk)  # as the Stripe webhook's save does
    assert dunning_tick() == {"agencies": 1, "campaigns_paused": 1}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    note = Notification.objects.get(user=world.owner.user, title__contains="paused")
    assert "read-only" in note.title and "subscription is canceled" in note.body
    assert dunning_tick()["campaigns_paused"] == 0  # nothing sending any more


def test_a_subscription_deleted_in_stripe_makes_the_agency_read_only(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    canceled = stripe_on.set_subscription(subscription["id"], status="canceled")
    assert deliver(Client(), WEBHOOK, stripe_on.event("customer.subscription.deleted", canceled)).status_code == 200
    row = Subscription.objects.get(agency=world.agency)
    assert row.status == "canceled" and row.changes.first().reason == "Stripe: customer.subscription.deleted."
    refused = login_client(world.owner).post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert refused.status_code == 403 and "subscription is canceled" in refused.content.decode()
    assert "Choose a plan" in login_client(world.owner).get("/").content.decode()


def test_a_read_only_agency_runs_no_automation_until_it_pays(world):
    from apps.campaigns.automations import StepInput, automation_save, automations_tick
    from apps.campaigns.models import AUTOMATION_SOURCE, AutomationRun
    from apps.delivery.models import Delivery
    from apps.messaging.services import fan_upsert

    def subscriber(fan_id: str, name: str):
        fan, _ = fan_upsert(
            creator=world.creator, platform="onlyfans", platform_fan_id=fan_id, username=fan_id,
            display_name=name, subscribed_since=timezone.now(), subscription_state="active",
        )  # fmt: skip
        return fan

    def later(minutes: int):
        return timezone.now() + timedelta(minutes=minutes)

    def welcomed(fan) -> int:
        return Delivery.objects.filter(source=AUTOMATION_SOURCE, recipient_id=fan.platform_fan_id).count()

    automation_save(membership=world.owner, creator=world.creator, kind="welcome", enabled=True,
                    steps=[StepInput(delay_minutes=5, text="Welcome {fan.first_name|babe}!")])  # fmt: skip
    first = subscriber("of-first", "Fay First")
    assert automations_tick()["started"] == 1
    # The payment failed and the grace period is over: the agency is read-only.
    Subscription.objects.filter(agency=world.agency).update(
        status="past_due", past_due_since=timezone.now() - timedelta(days=8), grace_ends_at=later(-1)
    )
    entitlements.invalidate(world.agency.pk)
    second = subscriber("of-second", "Sam Second")

    counts = automations_tick(now=later(6))  # the first fan's welcome is due

    assert (counts["started"], counts["sent"]) == (0, 0)
    assert welcomed(first) == 0 and welcomed(second) == 0
    assert AutomationRun.objects.get(fan=first).status == "active"  # waiting, not dropped

    Subscription.objects.filter(agency=world.agency).update(status="active", past_due_since=None, grace_ends_at=None)
    entitlements.invalidate(world.agency.pk)  # paid
    counts = automations_tick(now=later(7))
    assert counts["started"] == 1 and welcomed(first) == 1 and welcomed(second) == 1


def test_a_downgrade_while_a_campaign_sends_lets_it_finish(world, fans, django_capture_on_commit_callbacks):
    """A plan change (here to a plan without campaigns) is not a reason to stop what a member
    already started: the campaign finishes and nothing is paused; new campaign pages say why."""
    from apps.campaigns.models import DELIVERY_SOURCE
    from apps.delivery.models import Delivery
    from apps.delivery.services import delivery_pump
    from tests.billing.conftest import put_on_plan

    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        campaign_services.campaign_schedule(membership=world.owner, campaign=campaign)
        campaign_services.campaign_start(campaign_id=campaign.pk)
    put_on_plan(world.agency, "creator", feature_campaigns=False)

    assert dunning_tick()["campaigns_paused"] == 0  # not read-only: nothing to pause
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    sent = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk, status="sent").count()
    assert sent == len(fans)
    assert campaign_services.campaigns_tick()["completed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    page = login_client(world.owner).get(reverse("campaigns:list"))
    assert page.status_code == 403 and "not in your" in page.content.decode()


def test_a_read_only_agency_starts_no_scheduled_campaign_until_it_pays(world, fans, django_capture_on_commit_callbacks):
    from apps.delivery.models import Delivery

    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        campaign_services.campaign_schedule(membership=world.owner, campaign=campaign)
    Subscription.objects.filter(agency=world.agency).update(status="canceled")
    entitlements.invalidate(world.agency.pk)

    assert campaign_services.campaign_start(campaign_id=campaign.pk) == "skipped"  # its task came
    with django_capture_on_commit_callbacks():
        assert campaign_services.campaigns_tick()["started"] == 0  # the tick does not start it either
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED and not Delivery.objects.exists()  # waiting, kept

    Subscription.objects.filter(agency=world.agency).update(status="active")
    entitlements.invalidate(world.agency.pk)  # paid
    assert campaign_services.campaigns_tick()["started"] == 1
    assert campaign_services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.SENDING
    assert Delivery.objects.count() == len(fans)


def test_a_late_failed_payment_event_does_not_undo_a_payment_made_since(
    world, stripe_on, django_capture_on_commit_callbacks
):
    # The renewal failed, its webhook was delayed; the card was updated and Stripe's retry was
    # paid. The late "payment failed" event must not start a grace period Stripe knows is over.
    subscription = subscribe(world, stripe_on)
    invoice = stripe_on.add_invoice(subscription["customer"], 19900, status="open", subscription=subscription["id"])
    late = stripe_on.event("invoice.payment_failed", invoice)  # created now, delivered last
    invoice["status"] = "paid"
    assert deliver(Client(), WEBHOOK, stripe_on.event("invoice.paid", invoice)).status_code == 200
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(Client(), WEBHOOK, late).status_code == 200
    row = Subscription.objects.get(agency=world.agency)
    assert (row.status, row.grace_ends_at, row.past_due_since) == ("active", None, None)
    assert not mail.outbox
    assert "Your last payment failed" not in login_client(world.owner).get("/").content.decode()


def test_an_event_about_an_old_subscription_leaves_the_one_the_agency_pays_through(world, stripe_on):
    # Cancelled in the portal, then subscribed again through Checkout: a late or retried event
    # about the first subscription (its final invoice, its deletion) must not cancel the second.
    first = subscribe(world, stripe_on)
    canceled = stripe_on.set_subscription(first["id"], status="canceled")
    assert deliver(Client(), WEBHOOK, stripe_on.event("customer.subscription.deleted", canceled)).status_code == 200
    second = subscribe(world, stripe_on, "enterprise")
    row = Subscription.objects.get(agency=world.agency)
    assert (row.stripe_subscription_id, row.status, row.plan.code) == (second["id"], "active", "enterprise")
    for late in (
        stripe_on.event("customer.subscription.updated", canceled),
        stripe_on.event("customer.subscription.deleted", canceled, event_id="evt_retried_deletion"),
    ):
        assert deliver(Client(), WEBHOOK, late).status_code == 200
    row.refresh_from_db()
    assert (row.stripe_subscription_id, row.status, row.plan.code) == (second["id"], "active", "enterprise")
    assert login_client(world.owner).post(reverse("accounts:creator-create"), VALID_CREATOR).status_code == 302


def test_an_old_subscriptions_failed_invoice_while_stripe_is_down_leaves_the_agency_paying(world, stripe_on):
    first = subscribe(world, stripe_on)
    canceled = stripe_on.set_subscription(first["id"], status="canceled")
    assert deliver(Client(), WEBHOOK, stripe_on.event("customer.subscription.deleted", canceled)).status_code == 200
    second = subscribe(world, stripe_on, "enterprise")
    final = stripe_on.add_invoice(first["customer"], 19900, status="open", subscription=first["id"])
    for _ in range(3):  # Stripe is down: the invoice's subscription cannot be re-read
        stripe_on.fail_next(500)
    assert deliver(Client(), WEBHOOK, stripe_on.event("invoice.payment_failed", final)).status_code == 200
    row = Subscription.objects.get(agency=world.agency)
    assert (row.stripe_subscription_id, row.status, row.grace_ends_at) == (second["id"], "active", None)
