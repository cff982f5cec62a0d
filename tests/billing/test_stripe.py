"""Stripe billing as an owner and Stripe meet it: checkout and the portal from /billing/, the
signed webhook (verified, stored first, processed once, safe out of order, unknown customers
flagged), plan changes with proration and invoices. Everything goes through the official SDK to
the loopback fake (tests/fakes/stripe_server.py); webhooks carry real Stripe signatures."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from apps.billing.models import BillingEvent, Plan, Subscription, SubscriptionChange
from apps.notifications.models import Notification
from tests.conftest import login_client
from tests.fakes.stripe_server import StripeError, deliver, sign
from tests.messaging.api_helpers import error, token_client

pytestmark = pytest.mark.django_db
WEBHOOK = "/billing/stripe/webhook/"
JSON = "application/json"


def subscribe(world, fake, plan: str = "agency") -> dict:
    """The owner checks out on /billing/ and pays on Stripe's page; Stripe sends its events."""
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": plan})
    session_id = response["Location"].rsplit("/", 1)[1]
    subscription = fake.complete_checkout(session_id)
    client = Client()
    assert (
        deliver(
            client, WEBHOOK, fake.event("checkout.session.completed", fake.checkout_sessions[session_id])
        ).status_code
        == 200
    )
    assert deliver(client, WEBHOOK, fake.event("customer.subscription.created", subscription)).status_code == 200
    return subscription


# --- Checkout and the portal ---------------------------------------------------------------------


def test_an_owner_subscribes_through_stripe_checkout(world, stripe_on):
    page = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert "Subscribe to Agency" in page and 'name="plan" value="enterprise"' in page
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "agency"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    (session,) = stripe_on.checkout_sessions.values()
    assert session["client_reference_id"] == f"agency-{world.agency.pk}"
    assert session["price"] == world.agency.subscription.plan.__class__.objects.get(code="agency").stripe_price_id
    assert session["success_url"] == "https://app.huntaze.test/billing/?checkout=success"
    row = Subscription.objects.get(agency=world.agency)
    assert row.stripe_customer_id == session["customer"] and row.stripe_customer_id.startswith("cus_")
    # A second checkout reuses the customer.
    login_client(world.owner).post(reverse("billing:checkout"), {"plan": "creator"})
    assert len(stripe_on.customers) == 1


def test_paying_makes_the_subscription_active_on_the_plan_with_an_audit_row(world, stripe_on):
    subscribe(world, stripe_on, "creator")
    row = Subscription.objects.select_related("plan").get(agency=world.agency)
    assert (row.plan.code, row.status, row.source) == ("creator", "active", "stripe")
    assert row.stripe_subscription_id.startswith("sub_") and row.current_period_end is not None
    change = SubscriptionChange.objects.filter(agency=world.agency).first()
    assert change.to_plan.code == "creator" and change.to_status == "active" and change.reason.startswith("Stripe:")
    page = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert "Creator plan" in page and "Stripe" in page and "Manage payment method" in page


def test_the_portal_button_redirects_to_stripes_portal(world, stripe_on):
    subscribe(world, stripe_on)
    response = login_client(world.owner).post(reverse("billing:portal"))
    assert response.status_code == 302 and response["Location"].startswith("https://billing.stripe.com/p/session/")
    (portal,) = stripe_on.portal_sessions.values()
    assert portal["return_url"] == "https://app.huntaze.test/billing/"


def test_without_a_stripe_key_the_buttons_say_billing_is_managed_by_the_operator(world, settings):
    settings.STRIPE_SECRET_KEY = ""
    client = login_client(world.owner)
    page = client.get(reverse("billing:overview")).content.decode()
    assert "Billing is managed by the operator" in page and "Subscribe to" not in page
    response = client.post(reverse("billing:checkout"), {"plan": "agency"}, follow=True)
    assert "billing is managed by the operator" in response.content.decode()
    api = token_client(world.owner).post("/api/v1/billing/checkout", {"plan": "agency"}, content_type=JSON)
    assert api.status_code == 409 and error(api)["code"] == "billing_manual"


@pytest.mark.parametrize("role", ["manager", "chatter", "viewer"])
def test_only_owners_can_start_checkout_or_open_the_portal(world, stripe_on, role):
    client = login_client(world.member(role))
    assert client.post(reverse("billing:checkout"), {"plan": "agency"}).status_code == 403
    assert client.post(reverse("billing:portal")).status_code == 403
    assert not stripe_on.checkout_sessions and not stripe_on.customers


def test_an_unknown_plan_is_a_clear_message_not_a_500(world, stripe_on):
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "<nope>"}, follow=True)
    assert response.status_code == 200 and "There is no plan “&lt;nope&gt;”" in response.content.decode()


def test_stripe_down_at_checkout_is_a_friendly_message(world, stripe_on):
    for _ in range(3):  # the SDK retries a 500 twice
        stripe_on.fail_next(500)
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "agency"}, follow=True)
    assert response.status_code == 200
    assert "Stripe could not be reached just now" in response.content.decode()


def test_a_plan_change_from_our_page_is_prorated(world, stripe_on):
    subscribe(world, stripe_on, "creator")
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "enterprise"}, follow=True)
    assert "prorates" in response.content.decode()
    (update,) = stripe_on.item_updates
    assert update["proration_behavior"] == "create_prorations"
    assert Subscription.objects.get(agency=world.agency).plan.code == "enterprise"
    assert len(stripe_on.checkout_sessions) == 1  # no second checkout


# --- Webhooks ----------------------------------------------------------------------------------


def test_a_bad_missing_or_stale_signature_is_400_and_stores_nothing(world, stripe_on, caplog):
    event = stripe_on.event("customer.subscription.updated", {"id": "sub_x", "object": "subscription"})
    client = Client()
    assert deliver(client, WEBHOOK, event, secret="whsec_wrong").status_code == 400
    assert client.post(WEBHOOK, data="{}", content_type=JSON).status_code == 400
    assert deliver(client, WEBHOOK, event, timestamp=int(time.time()) - 301).status_code == 400
    assert deliver(client, WEBHOOK, event, signature="garbage").status_code == 400
    assert client.post(WEBHOOK, data=b"\xff\xfe", content_type=JSON, HTTP_STRIPE_SIGNATURE=sign("x")).status_code == 400
    assert not BillingEvent.objects.exists()
    assert "stripe webhook refused" in caplog.text and "whsec_" not in caplog.text


def test_a_replayed_event_changes_nothing_the_second_time(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    changes = SubscriptionChange.objects.filter(agency=world.agency).count()
    stripe_on.set_subscription(subscription["id"], status="past_due")
    event = stripe_on.event("customer.subscription.updated", stripe_on.subscriptions[subscription["id"]])
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    stripe_on.set_subscription(subscription["id"], status="active")  # Stripe moved on meanwhile
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    assert BillingEvent.objects.filter(stripe_id=event["id"]).count() == 1
    assert SubscriptionChange.objects.filter(agency=world.agency).count() == changes + 1
    assert Subscription.objects.get(agency=world.agency).status == "past_due"


def test_events_out_of_order_cannot_roll_the_state_back(world, stripe_on):
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "creator"})
    subscription = stripe_on.complete_checkout(response["Location"].rsplit("/", 1)[1])
    created = stripe_on.event("customer.subscription.created", subscription, created=int(time.time()) - 60)
    agency_price = stripe_on.prices[world.agency.subscription.plan.__class__.objects.get(code="agency").stripe_price_id]
    subscription["items"]["data"][0]["price"] = agency_price
    updated = stripe_on.event("customer.subscription.updated", subscription)
    assert deliver(Client(), WEBHOOK, updated).status_code == 200
    assert deliver(Client(), WEBHOOK, created).status_code == 200  # the older one arrives last
    assert Subscription.objects.get(agency=world.agency).plan.code == "agency"


def test_an_old_snapshot_is_ignored_when_stripe_cannot_be_reread(world, stripe_on):
    subscription = subscribe(world, stripe_on, "agency")
    stale = dict(subscription, status="past_due")
    for _ in range(3):
        stripe_on.fail_next(500)
    old = stripe_on.event("customer.subscription.updated", stale, created=int(time.time()) - 3600)
    assert deliver(Client(), WEBHOOK, old).status_code == 200
    assert Subscription.objects.get(agency=world.agency).status == "active"


def test_an_event_for_an_unknown_customer_is_stored_and_flagged(world, stripe_on):
    stranger = stripe_on.add_customer("stranger@example.com")
    event = stripe_on.event("invoice.paid", {"id": "in_1", "object": "invoice", "customer": stranger["id"]})
    response = deliver(Client(), WEBHOOK, event)
    assert response.status_code == 200 and response.json()["flagged"] is True
    stored = BillingEvent.objects.get(stripe_id=event["id"])
    assert stored.flagged and stored.agency is None and stored.processed_at and "No agency" in stored.error


# --- Invoices ----------------------------------------------------------------------------------


def test_the_billing_page_lists_invoices_with_links_and_caches_them(world, stripe_on, django_assert_max_num_queries):
    subscribe(world, stripe_on, "agency")
    client = login_client(world.owner)
    with django_assert_max_num_queries(25):
        body = client.get(reverse("billing:overview")).content.decode()
    assert "199.00 USD" in body and "HZ-0001" in body and "Paid" in body
    assert 'href="https://invoice.stripe.com/i/acct_test/' in body and "/pdf" in body
    calls = len(stripe_on.requests)
    client.get(reverse("billing:overview"))
    assert len(stripe_on.requests) == calls  # cached


def test_stripe_failing_on_invoices_shows_a_friendly_message(world, stripe_on):
    subscribe(world, stripe_on)
    cache.clear()
    for _ in range(3):
        stripe_on.fail_next(500)
    response = login_client(world.owner).get(reverse("billing:overview"))
    assert response.status_code == 200
    assert "Your invoices could not be loaded from Stripe just now" in response.content.decode()


def test_no_invoices_is_an_empty_state(world, stripe_on):
    assert "No invoices yet." in login_client(world.owner).get(reverse("billing:overview")).content.decode()


# --- API ---------------------------------------------------------------------------------------


def test_the_api_answers_plan_usage_and_redirect_urls(world, stripe_on):
    viewer = token_client(world.viewer).get("/api/v1/billing")
    assert viewer.status_code == 200 and viewer.json()["plan_code"] == "agency" and viewer.json()["online_payment"]
    assert {row["name"] for row in viewer.json()["usage"]} == {"creators", "seats", "ai_credits"}
    assert token_client(world.viewer).get("/api/v1/billing/invoices").status_code == 403
    denied = token_client(world.manager).post("/api/v1/billing/checkout", {"plan": "agency"}, content_type=JSON)
    assert denied.status_code == 403
    owner = token_client(world.owner)
    checkout = owner.post("/api/v1/billing/checkout", {"plan": "agency"}, content_type=JSON)
    assert checkout.status_code == 200 and checkout.json()["url"].startswith("https://checkout.stripe.com/")
    session_id = checkout.json()["url"].rsplit("/", 1)[1]
    deliver(
        Client(), WEBHOOK, stripe_on.event("customer.subscription.created", stripe_on.complete_checkout(session_id))
    )
    portal = owner.post("/api/v1/billing/portal", content_type=JSON)
    assert portal.status_code == 200 and portal.json()["url"].startswith("https://billing.stripe.com/")
    invoices = owner.get("/api/v1/billing/invoices").json()
    assert invoices[0]["amount"] in ("199.00", 199.0) and invoices[0]["currency"] == "USD"
    bad = owner.post("/api/v1/billing/checkout", {"plan": ""}, content_type=JSON)
    assert bad.status_code == 422


def test_another_agencys_stripe_customer_invoices_and_portal_stay_its_own(world, other_world, stripe_on):
    subscribe(world, stripe_on)
    outsider = login_client(other_world.owner)
    page = outsider.get(reverse("billing:overview")).content.decode()
    assert "HZ-0001" not in page and "No invoices yet." in page
    response = outsider.post(reverse("billing:portal"), follow=True)
    assert "Subscribe to a plan first" in response.content.decode()
    assert len(stripe_on.portal_sessions) == 0
    assert token_client(other_world.owner).get("/api/v1/billing/invoices").json() == []
    assert Subscription.objects.get(agency=other_world.agency).stripe_customer_id == ""


def test_the_plan_is_read_from_the_plans_item_wherever_the_metered_item_sits(world, stripe_on):
    # docs/billing.md step 2: the operator adds a metered price for overage to the subscription;
    # Stripe promises no order of its items.
    subscription = subscribe(world, stripe_on, "agency")
    plan_item = subscription["items"]["data"][0]
    metered = {"id": "si_metered", "object": "subscription_item", "quantity": None,
               "price": {"id": "price_overage", "object": "price", "recurring": {"interval": "month",
                                                                                "usage_type": "metered"}}}  # fmt: skip
    stripe_on.set_subscription(subscription["id"], items={"object": "list", "data": [metered, plan_item]})
    event = stripe_on.event("customer.subscription.updated", stripe_on.subscriptions[subscription["id"]])
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    row = Subscription.objects.get(agency=world.agency)
    assert (row.plan.code, row.stripe_item_id) == ("agency", plan_item["id"])
    # A switch in the portal changes the plan's item: it is read from there, not from the first.
    enterprise = Plan.objects.get(code="enterprise")
    plan_item["price"] = stripe_on.prices[enterprise.stripe_price_id]
    event = stripe_on.event("customer.subscription.updated", stripe_on.subscriptions[subscription["id"]])
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    row.refresh_from_db()
    assert (row.plan.code, row.stripe_item_id) == ("enterprise", plan_item["id"])


def test_an_event_stripe_could_not_be_read_for_is_answered_503_and_applied_when_delivered_again(world, stripe_on):
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "agency"})
    session_id = response["Location"].rsplit("/", 1)[1]
    subscription = stripe_on.complete_checkout(session_id)
    completed = stripe_on.event("checkout.session.completed", stripe_on.checkout_sessions[session_id])
    for _ in range(3):  # the SDK retries a 500 twice: Stripe is down while the event is processed
        stripe_on.fail_next(500)
    response = deliver(Client(), WEBHOOK, completed)
    assert response.status_code == 503 and response.json()["error"]["code"] == "stripe_unreachable"
    stored = BillingEvent.objects.get(stripe_id=completed["id"])
    assert stored.processed_at is None and "delivered again" in stored.error
    assert deliver(Client(), WEBHOOK, completed).status_code == 200  # Stripe's next delivery
    row = Subscription.objects.get(agency=world.agency)
    assert (row.stripe_subscription_id, row.status) == (subscription["id"], "active")


def test_a_webhook_secret_without_the_api_key_records_the_event_instead_of_failing_every_delivery(
    world, stripe_on, settings
):
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "agency"})
    session_id = response["Location"].rsplit("/", 1)[1]
    stripe_on.complete_checkout(session_id)
    settings.STRIPE_SECRET_KEY = ""  # misconfigured: the secret is set, the key is not
    completed = stripe_on.event("checkout.session.completed", stripe_on.checkout_sessions[session_id])
    assert deliver(Client(), WEBHOOK, completed).status_code == 200
    stored = BillingEvent.objects.get(stripe_id=completed["id"])
    assert stored.processed_at is not None and "Online payment is not set up" in stored.error


def test_a_second_checkout_before_the_first_ones_webhook_is_refused(world, stripe_on):
    # The owner paid in one tab; before Stripe's webhook arrives the billing page still offers
    # "Subscribe", and a second checkout would have charged the card twice.
    client = login_client(world.owner)
    response = client.post(reverse("billing:checkout"), {"plan": "agency"})
    stripe_on.complete_checkout(response["Location"].rsplit("/", 1)[1])  # paid; no webhook yet
    again = client.post(reverse("billing:checkout"), {"plan": "agency"}, follow=True)
    assert "Stripe already holds a subscription for this agency" in again.content.decode()
    assert len(stripe_on.checkout_sessions) == 1


def test_a_subscription_stripe_paused_or_let_expire_does_not_block_subscribing_again(world, stripe_on):
    # Stripe lists every subscription that is not canceled, paused and incomplete_expired ones
    # too; they end the agency's plan here (Canceled) and must not refuse the next checkout.
    first = subscribe(world, stripe_on)
    paused = stripe_on.set_subscription(first["id"], status="paused")
    assert deliver(Client(), WEBHOOK, stripe_on.event("customer.subscription.updated", paused)).status_code == 200
    assert Subscription.objects.get(agency=world.agency).status == "canceled"
    response = login_client(world.owner).post(reverse("billing:checkout"), {"plan": "agency"})
    assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/")
    assert len(stripe_on.checkout_sessions) == 2


# --- Two Checkout pages ------------------------------------------------------------------------


def checkout_page(client, plan: str = "agency") -> str:
    """The owner presses Subscribe: the id of the Checkout Session the browser is sent to."""
    response = client.post(reverse("billing:checkout"), {"plan": plan})
    assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/")
    return response["Location"].rsplit("/", 1)[1]


def test_opening_checkout_again_expires_the_earlier_page_so_only_one_can_be_paid(world, stripe_on):
    # Two tabs, or a double click past the button's guard: each opens a Checkout page. Before,
    # both stayed open and both could be paid (two subscriptions, two charges).
    client = login_client(world.owner)
    first = checkout_page(client, "agency")
    second = checkout_page(client, "creator")
    assert first != second
    assert stripe_on.checkout_sessions[first]["status"] == "expired"
    assert stripe_on.checkout_sessions[second]["status"] == "open"
    assert ("POST", f"/v1/checkout/sessions/{first}/expire") in [(m, p) for m, p, _ in stripe_on.requests]
    with pytest.raises(StripeError, match="expired"):
        stripe_on.complete_checkout(first)  # Stripe's page says the session expired
    stripe_on.complete_checkout(second)
    assert len([s for s in stripe_on.subscriptions.values() if s["status"] == "active"]) == 1


def test_a_page_paid_while_the_next_one_opens_sends_the_owner_to_the_billing_page(world, stripe_on):
    # The owner pays in the first tab at the very moment the second asks for a page: the first
    # can no longer be expired, so the new page is expired instead and the owner told why.
    client = login_client(world.owner)
    first = checkout_page(client)

    def pay_first(method: str, path: str) -> None:
        if path == f"/v1/checkout/sessions/{first}/expire" and stripe_on.checkout_sessions[first]["status"] == "open":
            stripe_on.complete_checkout(first)

    stripe_on.on_request = pay_first
    response = client.post(reverse("billing:checkout"), {"plan": "agency"}, follow=True)
    assert "Stripe already holds a subscription for this agency" in response.content.decode()
    statuses = sorted(session["status"] for session in stripe_on.checkout_sessions.values())
    assert statuses == ["complete", "expired"]


def paid_twice(world, fake) -> tuple[dict, dict]:
    """Two pages paid: the first paid in its tab while the second was being opened (after the
    second's check of Stripe's subscriptions, before any webhook), then the second paid too."""
    client = login_client(world.owner)
    first = checkout_page(client)

    def pay_first(method: str, path: str) -> None:
        if method == "POST" and path == "/v1/checkout/sessions" and fake.checkout_sessions[first]["status"] == "open":
            fake.complete_checkout(first)

    fake.on_request = pay_first
    second = checkout_page(client)
    fake.on_request = None
    fake.complete_checkout(second)
    return fake.checkout_sessions[first], fake.checkout_sessions[second]


def completed(fake, session: dict) -> None:
    """Stripe's events for a paid Checkout page, delivered to our webhook."""
    subscription = fake.subscriptions[session["subscription"]]
    for event in (fake.event("checkout.session.completed", session),
                  fake.event("customer.subscription.created", subscription)):  # fmt: skip
        assert deliver(Client(), WEBHOOK, event).status_code == 200


@pytest.mark.parametrize("order", ["in order", "second first"])
def test_a_second_paid_checkout_is_cancelled_and_refunded_so_the_agency_pays_once(world, stripe_on, order):
    first, second = paid_twice(world, stripe_on)
    kept, duplicate = (first, second) if order == "in order" else (second, first)
    completed(stripe_on, kept)
    completed(stripe_on, duplicate)

    row = Subscription.objects.get(agency=world.agency)
    assert (row.stripe_subscription_id, row.status, row.plan.code) == (kept["subscription"], "active", "agency")
    live = [s["id"] for s in stripe_on.subscriptions.values() if s["status"] != "canceled"]
    assert live == [kept["subscription"]]
    (refund,) = stripe_on.refunds.values()
    assert refund["amount"] == 19900 and refund["status"] == "succeeded"
    paid = next(p for p in stripe_on.invoice_payments.values() if p["invoice"] == duplicate["invoice"])
    assert refund["payment_intent"] == paid["payment"]["payment_intent"]
    # The owners are told, and the plan history says what happened.
    note = Notification.objects.get(user=world.owner.user)
    assert "paid twice" in note.title and "199.00 USD" in note.body
    assert "refunded" in SubscriptionChange.objects.filter(agency=world.agency).first().reason
    # Stripe's later events about the cancelled duplicate change nothing.
    canceled = stripe_on.subscriptions[duplicate["subscription"]]
    assert deliver(Client(), WEBHOOK, stripe_on.event("customer.subscription.deleted", canceled)).status_code == 200
    row.refresh_from_db()
    assert (row.stripe_subscription_id, row.status) == (kept["subscription"], "active")


def test_a_duplicate_whose_refund_stripe_could_not_take_is_refunded_once_when_delivered_again(world, stripe_on):
    first, second = paid_twice(world, stripe_on)
    completed(stripe_on, first)
    failures = iter(range(3))  # the SDK retries a 500 twice

    def refunds_down(method: str, path: str) -> None:
        if path == "/v1/refunds" and next(failures, None) is not None:
            stripe_on.fail_next(500)

    stripe_on.on_request = refunds_down
    event = stripe_on.event("checkout.session.completed", second)
    assert deliver(Client(), WEBHOOK, event).status_code == 503
    assert not stripe_on.refunds
    assert deliver(Client(), WEBHOOK, event).status_code == 200  # Stripe delivers it again later
    assert len(stripe_on.refunds) == 1
    assert stripe_on.subscriptions[second["subscription"]]["status"] == "canceled"
    assert Notification.objects.filter(user=world.owner.user).count() == 1


def test_two_starts_at_once_send_both_tabs_to_the_same_open_page(world, stripe_on):
    # A double click: both requests have created a page before either looks for the earlier
    # ones. Whichever looks first, both send the owner to the newest page and leave it the only
    # one open (neither expires the page the other hands out).
    from apps.billing import stripe_api, stripe_sync

    customer = stripe_on.add_customer()["id"]
    price = Plan.objects.get(code="agency").stripe_price_id
    older, newer = (
        stripe_api.checkout_session_create(customer=customer, price=price, agency_ref=f"agency-{world.agency.pk}",
                                           success_url="https://app.huntaze.test/billing/",
                                           cancel_url="https://app.huntaze.test/billing/")
        for _ in range(2)
    )  # fmt: skip
    assert stripe_sync._one_open_checkout(customer=customer, session=newer)["id"] == newer["id"]
    assert stripe_sync._one_open_checkout(customer=customer, session=older)["id"] == newer["id"]
    assert [s["id"] for s in stripe_on.checkout_sessions.values() if s["status"] == "open"] == [newer["id"]]


def test_a_checkout_paid_after_the_subscription_ended_in_stripe_takes_over_and_is_not_refunded(world, stripe_on):
    # Cancelled in Stripe's portal (the deletion event not delivered yet), then subscribed again:
    # the new subscription is no duplicate, whatever the row still says.
    from apps.billing import stripe_api

    first = subscribe(world, stripe_on)
    stripe_on.set_subscription(first["id"], status="canceled")
    session = stripe_api.checkout_session_create(
        customer=first["customer"], price=Plan.objects.get(code="enterprise").stripe_price_id,
        agency_ref=f"agency-{world.agency.pk}", success_url="https://app.huntaze.test/billing/",
        cancel_url="https://app.huntaze.test/billing/",
    )  # fmt: skip
    second = stripe_on.complete_checkout(session["id"])
    completed(stripe_on, stripe_on.checkout_sessions[session["id"]])
    row = Subscription.objects.select_related("plan").get(agency=world.agency)
    assert (row.stripe_subscription_id, row.status, row.plan.code) == (second["id"], "active", "enterprise")
    assert stripe_on.subscriptions[second["id"]]["status"] == "active" and not stripe_on.refunds
