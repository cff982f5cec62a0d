"""Billing with Stripe: checkout, the customer portal, plan changes with proration, the webhook's
events, dunning, invoices and AI credits reported to Stripe's meter.

The webhook, in order:

1. **verify**: ``stripe.Webhook.construct_event`` with STRIPE_WEBHOOK_SECRET and a tolerance of
   STRIPE_WEBHOOK_TOLERANCE seconds; a bad or missing signature is WebhookSignatureError (the view
   answers 400 and logs it, without the header or the secret) and nothing is stored;
2. **store first**: one BillingEvent per Stripe event id (unique in the database), so an event is
   never lost and a redelivery finds its row;
3. **process once**: the event is claimed with a conditional update (``claimed_at`` set where
   ``processed_at`` is empty and no live claim exists) and no lock is held afterwards: Stripe is
   asked with no transaction open, and what it answers is applied in short transactions, each
   holding the agency's subscription row only while writing it. A replay of a processed event
   changes nothing; a delivery arriving while another holds the claim answers 409 (Stripe
   delivers it again later); a claim older than CLAIM_TIMEOUT belonged to a lost worker and is
   taken over. Applying is idempotent (a state is set, not a step taken), so a worker lost
   between applying and marking the event processed leaves nothing wrong when it is redone;
4. **out of order**: for subscription, checkout and invoice events the subscription is re-read
   from Stripe and its current state applied; the row keeps a watermark (``stripe_synced_at``,
   the moment the state was read), and a state older than it (the event's own snapshot, used only
   when Stripe cannot be reached, or a read that finished before another one already applied)
   is ignored, so an older event arriving last cannot roll the state back;
5. **unknown customer**: stored, flagged, answered 200 (Stripe stops retrying), visible in the admin;
   except the deletion of a subscription we cancelled ourselves when its agency closed (it carries
   ``stripe_api.CLOSED_AGENCY_COMMENT``), which is expected and not flagged.

Stripe's statuses onto ours: trialing → trialing; active → active; past_due, unpaid → past_due;
canceled, incomplete_expired, paused → canceled; incomplete (a first payment still pending, e.g. a
card check) leaves ours as it was, so no one is told a payment failed that has not. Every change of
plan or status writes a SubscriptionChange, like a change made by hand.

Checkout: one page at a time. Opening Checkout expires the customer's earlier open sessions
(``_one_open_checkout``), and a second subscription paid through Checkout all the same (two pages
paid within moments) is cancelled at once and refunded in full (``_checkout_paid_twice``): one
agency, one subscription, one payment.

Dunning: a subscription entering past_due starts a grace period of BILLING_GRACE_DAYS and the
owners get an email; when it ends the agency is read-only (apps/billing/entitlements.py computes
it from ``grace_ends_at`` on read). A paid invoice or an active subscription clears it at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Agency, Membership, Role
from apps.accounts.permissions import Perm, require
from apps.billing import entitlements, stripe_api
from apps.billing.models import BillingEvent, Plan, Subscription, UsageReport
from apps.billing.services import dunning_update, record_change
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

STATUS_MAP = {
    "trialing": Subscription.Status.TRIALING,
    "active": Subscription.Status.ACTIVE,
    "past_due": Subscription.Status.PAST_DUE,
    "unpaid": Subscription.Status.PAST_DUE,
    "canceled": Subscription.Status.CANCELED,
    "incomplete_expired": Subscription.Status.CANCELED,
    "paused": Subscription.Status.CANCELED,
}
LIVE_STATUSES = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
HANDLED_EVENTS = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.finalized",
)
ZERO_DECIMAL_CURRENCIES = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)  # fmt: skip


# Longer than the SDK's worst case for one Stripe call (TIMEOUT_SECONDS, retried twice) plus the
# writes around it.
CLAIM_TIMEOUT = timedelta(minutes=2)


class WebhookSignatureError(Exception):
    """The request is not a Stripe event signed with our secret (or is older than the tolerance)."""


def agency_ref(agency_id: int) -> str:
    """The agency's id as Stripe sees it (client_reference_id, metadata)."""
    return f"agency-{agency_id}"


def _agency_id_from_ref(ref: Any) -> int | None:
    if isinstance(ref, str) and ref.startswith("agency-") and ref[7:].isdigit():
        return int(ref[7:])
    return None


def _moment(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if seconds not in (None, "") else None


def _owners(agency_id: int) -> list[Membership]:
    return list(Membership.objects.filter(agency_id=agency_id, role=Role.OWNER).select_related("user"))


# --- Checkout, portal, plan change ---------------------------------------------------------------


@dataclass
class Redirect:
    url: str
    plan_changed: bool = False


def _customer_for(membership: Membership) -> str:
    """The agency's Stripe customer, created at its first checkout and stored on its subscription."""
    subscription = Subscription.objects.filter(agency_id=membership.agency_id).first()
    if subscription is None:
        raise ApplicationError("This agency has no subscription yet; an administrator must assign a plan first.")
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    agency = Agency.objects.get(pk=membership.agency_id)
    owner = membership.user
    customer = stripe_api.customer_create(
        email=owner.email, name=agency.name, agency_ref=agency_ref(membership.agency_id)
    )
    Subscription.objects.filter(pk=subscription.pk, stripe_customer_id="").update(stripe_customer_id=customer["id"])
    return Subscription.objects.values_list("stripe_customer_id", flat=True).get(pk=subscription.pk)


def checkout_start(*, membership: Membership, plan_code: str, base_url: str) -> Redirect:
    """Subscribe to ``plan_code``: a Checkout Session's URL, or, for an agency that already pays
    through Stripe, its subscription moved to the plan's price at once with proration (Stripe
    credits the unused time) and the billing page's URL."""
    require(membership, Perm.MANAGE_BILLING)
    if not stripe_api.stripe_enabled():
        raise stripe_api.BillingNotConfigured()
    plan = Plan.objects.filter(code=plan_code, is_public=True).first()
    if plan is None:
        raise ApplicationError(f"There is no plan “{plan_code[:40]}”.", field="plan")
    if not plan.stripe_price_id:
        raise ApplicationError(f"The {plan.name} plan cannot be bought online; contact the operator.", field="plan")
    billing_page = base_url + reverse("billing:overview")
    current = Subscription.objects.select_related("plan").filter(agency_id=membership.agency_id).first()
    if (
        current is not None
        and current.stripe_subscription_id
        and current.stripe_item_id
        and current.status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING, Subscription.Status.PAST_DUE)
    ):
        if current.plan_id == plan.pk:
            raise ApplicationError(f"You are already on the {plan.name} plan.", field="plan")
        found = stripe_api.subscription_price_change(
            subscription_id=current.stripe_subscription_id,
            item_id=current.stripe_item_id,
            price=plan.stripe_price_id,
            key=f"huntaze-plan-{current.stripe_subscription_id}-{plan.stripe_price_id}-{current.updated_at.timestamp():.0f}",
        )
        subscription_apply(
            stripe_subscription=found, as_of=timezone.now(), reason=f"Plan changed on the billing page by "
            f"{membership.user.email} (prorated).", by=membership.user,
        )  # fmt: skip
        return Redirect(url=billing_page, plan_changed=True)
    customer = _customer_for(membership)
    # Paid a moment ago in another tab, and the webhook not here yet: the row still says "no
    # subscription", but Stripe has one. A second checkout would charge the customer twice.
    if (
        current is not None
        and current.stripe_customer_id
        and any(_holds(found.get("status", "")) for found in stripe_api.subscription_list(customer))
    ):
        raise _already_subscribed()
    session = stripe_api.checkout_session_create(
        customer=customer,
        price=plan.stripe_price_id,
        agency_ref=agency_ref(membership.agency_id),
        success_url=billing_page + "?checkout=success",
        cancel_url=billing_page + "?checkout=cancelled",
    )
    return Redirect(url=_one_open_checkout(customer=customer, session=session)["url"])


def _holds(status: str) -> bool:
    """A Stripe subscription status that bills (or is about to bill) the customer: live here, or
    ``incomplete`` (its first payment still pending)."""
    return STATUS_MAP.get(status) in LIVE_STATUSES or status == "incomplete"


def _already_subscribed() -> ApplicationError:
    return ApplicationError(
        "Stripe already holds a subscription for this agency: it shows here within a minute of the "
        "payment. To change the plan or the card, use Manage payment.",
        field="plan",
    )


def _one_open_checkout(*, customer: str, session: dict[str, Any]) -> dict[str, Any]:
    """Leave the customer one Checkout page that can be paid, the newest, and answer it. The
    earlier ones (another tab, a double click past the button's guard) are expired, so their
    pages say so and take no payment. Two starts at once agree on the newest (by creation, then
    id), so they expire the same pages and send the owner to the same one. An earlier page that
    was paid meanwhile (in its tab, at this very moment) cannot be expired: the new page is
    expired instead and the owner told Stripe holds a subscription. When Stripe fails half-way
    the new page is not handed out (an earlier one left open is then the only one that can be
    paid), and the next start finds and expires what is left."""
    pages = stripe_api.checkout_session_list_open(customer)
    if not any(page.get("id") == session.get("id") for page in pages):
        pages.append(session)  # not listed yet
    newest = max(pages, key=lambda page: (int(page.get("created") or 0), str(page.get("id") or "")))
    paid = False
    for page in pages:
        if page.get("id") != newest.get("id"):
            paid = _checkout_expire(page["id"]) or paid
    if paid:
        _checkout_expire(newest["id"])
        raise _already_subscribed()
    return newest


def _checkout_expire(session_id: str) -> bool:
    """Expire one Checkout page; True when it could not be because it was paid meanwhile (one
    expired meanwhile by another start is just as good)."""
    try:
        stripe_api.checkout_session_expire(session_id)
    except stripe_api.BillingProviderError as error:
        if error.retryable:
            raise
        return stripe_api.checkout_session_retrieve(session_id).get("status") == "complete"
    return False


def portal_start(*, membership: Membership, base_url: str) -> Redirect:
    """The Stripe customer portal (card, invoices, plan), returning to the billing page."""
    require(membership, Perm.MANAGE_BILLING)
    if not stripe_api.stripe_enabled():
        raise stripe_api.BillingNotConfigured()
    customer = (
        Subscription.objects.filter(agency_id=membership.agency_id).values_list("stripe_customer_id", flat=True).first()
    )
    if not customer:
        raise ApplicationError("Subscribe to a plan first: the payment portal opens once you have paid with Stripe.")
    session = stripe_api.portal_session_create(customer=customer, return_url=base_url + reverse("billing:overview"))
    return Redirect(url=session["url"])


# --- Applying Stripe's state ---------------------------------------------------------------------


def _subscription_for(*, customer: str | None, subscription_id: str | None, ref: Any) -> Subscription | None:
    query = Subscription.objects.select_for_update().select_related("plan")
    if subscription_id:
        found = query.filter(stripe_subscription_id=subscription_id).first()
        if found is not None:
            return found
    if customer:
        found = query.filter(stripe_customer_id=customer).first()
        if found is not None:
            return found
    agency_id = _agency_id_from_ref(ref)
    return query.filter(agency_id=agency_id).first() if agency_id is not None else None


def subscription_apply(
    *, stripe_subscription: dict[str, Any], as_of: datetime, reason: str, by=None
) -> Subscription | None:
    """Apply a Stripe subscription's state (as it was at ``as_of``) to the agency's row, unless
    the row already holds a newer one. None when no agency has this customer or subscription."""
    with transaction.atomic():
        row = _subscription_for(
            customer=stripe_subscription.get("customer"),
            subscription_id=stripe_subscription.get("id"),
            ref=(stripe_subscription.get("metadata") or {}).get("agency"),
        )
        if row is None:
            return None
        status = STATUS_MAP.get(stripe_subscription.get("status", ""), row.status)
        incoming = stripe_subscription.get("id") or ""
        # Found by the customer or the agency, but the row bills through another subscription:
        # move to this one only when that one has ended and this one is live (subscribing again
        # after a cancellation). An event about an old or a second subscription must not cancel,
        # or take over, the one the agency pays through.
        other = bool(incoming and row.stripe_subscription_id and incoming != row.stripe_subscription_id)
        if other and not (row.status == Subscription.Status.CANCELED and status in LIVE_STATUSES):
            logger.warning(
                "stripe subscription %s ignored: agency %s is billed through %s (%s); check the customer's "
                "subscriptions in Stripe", incoming, row.agency_id, row.stripe_subscription_id, row.status,
            )  # fmt: skip
            return row
        if row.stripe_synced_at is not None and as_of < row.stripe_synced_at:
            logger.info("stripe state of %s ignored: older than the one applied", stripe_subscription.get("id"))
            return row
        before = (row.plan, row.status)
        items = ((stripe_subscription.get("items") or {}).get("data")) or []
        item, plan, price_id = _plan_item(items)
        if price_id and plan is None:
            logger.warning("stripe price %s matches no plan; the plan is left as it is", price_id)
        row.plan = plan or row.plan
        row.status = status
        row.source = Subscription.Source.STRIPE
        row.stripe_subscription_id = stripe_subscription.get("id") or row.stripe_subscription_id
        row.stripe_item_id = item.get("id") or row.stripe_item_id
        row.stripe_customer_id = row.stripe_customer_id or stripe_subscription.get("customer") or ""
        row.cancel_at_period_end = bool(stripe_subscription.get("cancel_at_period_end"))
        start = _moment(item.get("current_period_start") or stripe_subscription.get("current_period_start"))
        end = _moment(item.get("current_period_end") or stripe_subscription.get("current_period_end"))
        if start and end and end > start:
            row.current_period_start, row.current_period_end = start, end
        trial_end = _moment(stripe_subscription.get("trial_end"))
        if status == Subscription.Status.TRIALING:
            row.trial_ends_at = trial_end or row.trial_ends_at or end
        entering_dunning = dunning_update(row, status)
        row.stripe_synced_at = as_of
        row.save()
        if (row.plan, row.status) != before:
            record_change(row, from_plan=before[0], from_status=before[1], by=by, reason=reason)
        else:
            entitlements.invalidate_on_commit(row.agency_id)
        invoices_forget(row.agency_id)
    if entering_dunning:
        transaction.on_commit(lambda: dunning_email_send(agency_id=row.agency_id))
    if row.status == Subscription.Status.CANCELED and before[1] != row.status:
        from apps.billing.tasks import readonly_campaigns_pause as pause_task

        pause_task.delay_on_commit(row.agency_id)
    return row


def _price_id(item: dict[str, Any]) -> str | None:
    price = item.get("price")
    return price.get("id") if isinstance(price, dict) else price


def _plan_item(items: list[dict[str, Any]]) -> tuple[dict[str, Any], Plan | None, str | None]:
    """The subscription item that is the plan (its price is a plan's), its plan and price id.
    A subscription with overage also holds the metered item (docs/billing.md, step 2), in no
    promised order. When no item's price is a plan's, the first item that is not metered is
    answered, with no plan (the caller logs that the price matches none and keeps the plan)."""
    prices = [_price_id(item) for item in items]
    plans = {plan.stripe_price_id: plan for plan in Plan.objects.filter(stripe_price_id__in=[p for p in prices if p])}
    for item, price_id in zip(items, prices, strict=True):
        if price_id in plans:
            return item, plans[price_id], price_id
    licensed = [item for item in items if not _metered(item)] or items
    item = licensed[0] if licensed else {}
    return item, None, _price_id(item) if item else None


def _metered(item: dict[str, Any]) -> bool:
    price = item.get("price")
    return isinstance(price, dict) and (price.get("recurring") or {}).get("usage_type") == "metered"


def dunning_email_send(*, agency_id: int) -> int:
    """Tell the agency's owners their payment failed, when the agency becomes read-only and how
    to fix it. Answers the number of emails sent; a mail server error is logged, not raised."""
    row = Subscription.objects.select_related("agency", "plan").filter(agency_id=agency_id).first()
    if row is None or row.grace_ends_at is None:
        return 0
    context = {
        "agency": row.agency,
        "plan": row.plan,
        "grace_ends_at": row.grace_ends_at,
        "url": settings.SITE_URL + reverse("billing:overview"),
    }
    sent = 0
    for owner in _owners(agency_id):
        try:
            send_mail(
                subject=f"Payment failed for {row.agency.name} on Huntaze: update your payment method",
                message=render_to_string("billing/email/payment_failed.txt", {**context, "owner": owner.user}),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[owner.user.email],
            )
            sent += 1
        except Exception:
            logger.exception("payment-failed email to an owner of agency %s not sent", agency_id)
    return sent


# --- The webhook -------------------------------------------------------------------------------


def webhook_receive(*, payload: bytes, signature: str | None) -> BillingEvent:
    """Verify, store, process once (see the module docstring). Raises WebhookSignatureError."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret or not signature:
        raise WebhookSignatureError("no signature" if secret else "STRIPE_WEBHOOK_SECRET is not set")
    try:
        text = payload.decode("utf-8")
        stripe.Webhook.construct_event(text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE)
        data = json.loads(text)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as error:
        raise WebhookSignatureError(type(error).__name__) from error
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise WebhookSignatureError("not an event")
    try:
        event, _ = BillingEvent.objects.get_or_create(
            stripe_id=data["id"][:100],
            defaults={
                "type": data["type"][:80],
                "created": _moment(data.get("created")) or timezone.now(),
                "livemode": bool(data.get("livemode")),
                "payload": data,
            },
        )
    except IntegrityError:  # the same event delivered twice at once
        event = BillingEvent.objects.get(stripe_id=data["id"][:100])
    return event_process(event_id=event.pk)


def event_process(*, event_id: int) -> BillingEvent:
    """Process a stored event once (see the module docstring, step 3). Answers the event; its
    ``processed_at`` is still None when another delivery holds the claim (the view answers 409,
    so Stripe delivers it again later) or when Stripe could not be reached while processing it
    (``claimed_at`` None again: the view answers 503, and Stripe delivers it again later)."""
    claim = timezone.now()
    taken = (
        BillingEvent.objects.filter(pk=event_id, processed_at__isnull=True)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=claim - CLAIM_TIMEOUT))
        .update(claimed_at=claim)
    )
    event = BillingEvent.objects.get(pk=event_id)
    if not taken:
        return event  # processed already (a replay), or being processed by another delivery
    error = ""
    try:
        agency_id = _handle(event)  # Stripe is asked here, with no transaction open
    except stripe_api.BillingProviderError as failure:
        if failure.retryable:
            # Stripe could not be reached, or was busy: the claim is let go with the reason, the
            # event stays unprocessed, and the view's 503 has Stripe deliver it again later.
            BillingEvent.objects.filter(pk=event_id, claimed_at=claim).update(
                claimed_at=None, error=f"Stripe: {failure.message} (to be delivered again)"[:500]
            )
            event.refresh_from_db()
            return event
        agency_id, error = None, f"Stripe: {failure.message}"[:500]
    except stripe_api.BillingNotConfigured as failure:  # a webhook secret without STRIPE_SECRET_KEY
        agency_id, error = None, failure.message[:500]
    except BaseException:
        # Unexpected: the claim is let go at once so that Stripe's next delivery processes it.
        BillingEvent.objects.filter(pk=event_id, claimed_at=claim).update(claimed_at=None)
        raise
    flagged = agency_id is None and event.type in HANDLED_EVENTS and not error and not _closed_by_us(event)
    if flagged:
        error = "No agency has this Stripe customer or subscription."
    BillingEvent.objects.filter(pk=event_id, claimed_at=claim, processed_at__isnull=True).update(
        agency_id=agency_id, processed_at=timezone.now(), flagged=flagged, error=error
    )
    event.refresh_from_db()
    return event


def _closed_by_us(event: BillingEvent) -> bool:
    """The deletion of a subscription we cancelled while closing its agency: nobody has the
    customer any more, which is what closing meant, so it is no case for the admin."""
    obj = (event.payload.get("data") or {}).get("object") or {}
    details = obj.get("cancellation_details") if isinstance(obj, dict) else None
    return (
        event.type == "customer.subscription.deleted"
        and isinstance(details, dict)
        and details.get("comment") == stripe_api.CLOSED_AGENCY_COMMENT
    )


def _handle(event: BillingEvent) -> int | None:
    """Apply one event; the agency it was about (None: nobody we know)."""
    obj = (event.payload.get("data") or {}).get("object") or {}
    kind = event.type
    reason = f"Stripe: {kind}."
    if kind == "checkout.session.completed":
        row = _checkout_completed(obj)
        if row is None:
            return None
        subscription_id = obj.get("subscription")
        if subscription_id:
            row = _sync(subscription_id, fallback=None, event=event, reason=reason) or row
            if row.stripe_subscription_id not in ("", subscription_id) and row.status in LIVE_STATUSES:
                _checkout_paid_twice(row, subscription_id, event=event, reason=reason)
        return row.agency_id
    if kind.startswith("customer.subscription."):
        if kind not in HANDLED_EVENTS:
            return None
        row = _sync(obj.get("id"), fallback=obj, event=event, reason=reason)
        return row.agency_id if row else None
    if kind.startswith("invoice."):
        if kind not in HANDLED_EVENTS:
            return None
        return _invoice_event(kind, obj, event, reason)
    return None  # not an event billing listens to: stored, nothing to do


def _checkout_completed(session: dict[str, Any]) -> Subscription | None:
    with transaction.atomic():
        row = _subscription_for(customer=session.get("customer"), subscription_id=session.get("subscription"),
                                ref=session.get("client_reference_id"))  # fmt: skip
        if row is None:
            return None
        if not row.stripe_customer_id and session.get("customer"):
            row.stripe_customer_id = session["customer"]
            row.save(update_fields=["stripe_customer_id", "updated_at"])
    return row


def _checkout_paid_twice(row: Subscription, subscription_id: str, *, event: BillingEvent, reason: str) -> None:
    """A Checkout page paid for an agency that already pays through another subscription (two
    pages paid: the second one's expiry came too late). One agency, one subscription: the one
    applied first stays, and the new one is cancelled at once and its payment refunded in full,
    which is what someone who paid twice by mistake expects; the owners are told and the plan
    history says so. Unless the row's own subscription has in fact ended in Stripe (its deletion
    not delivered yet): then that is applied and the new one takes over, as for subscribing again.
    Each step is safe to redo when Stripe is down half-way and delivers the event again: a
    cancelled subscription is not cancelled twice, and the refund's idempotency key is its payment's."""
    kept = stripe_api.subscription_retrieve(row.stripe_subscription_id)
    if not _holds(kept.get("status", "")):
        subscription_apply(stripe_subscription=kept, as_of=timezone.now(), reason=reason)
        _sync(subscription_id, fallback=None, event=event, reason=reason)
        return
    duplicate = stripe_api.subscription_retrieve(subscription_id)
    if duplicate.get("status") != "canceled":
        stripe_api.subscription_cancel(subscription_id, comment=stripe_api.DUPLICATE_COMMENT)
    refunded = _refund_in_full(duplicate, agency_id=row.agency_id)
    _, plan, _ = _plan_item(((duplicate.get("items") or {}).get("data")) or [])
    what = f"{plan.name} plan" if plan else "plan"
    amounts = ", ".join(f"{_amount(minor, currency)} {currency.upper()}" for currency, minor in refunded.items())
    logger.warning("stripe subscription %s of agency %s paid twice through checkout: cancelled, %s refunded",
                   subscription_id, row.agency_id, amounts or "nothing")  # fmt: skip
    with transaction.atomic():
        row = Subscription.objects.select_for_update().select_related("plan").get(pk=row.pk)
        record_change(row, from_plan=row.plan, from_status=row.status, by=None,
                      reason=f"Stripe: a second {what} paid through another Checkout page was cancelled at once"
                      + (f" and its {amounts} refunded." if amounts else "."))  # fmt: skip
    _paid_twice_notify(row, what=what, amounts=amounts)


def _refund_in_full(subscription: dict[str, Any], *, agency_id: int) -> dict[str, int]:
    """Refund every payment of the subscription's latest (for a new one: its first) invoice;
    answers what was refunded by currency, in minor units."""
    invoice = subscription.get("latest_invoice")
    invoice = invoice.get("id") if isinstance(invoice, dict) else invoice
    refunded: dict[str, int] = {}
    for payment in stripe_api.invoice_payment_list(invoice) if invoice else []:
        intent = (payment.get("payment") or {}).get("payment_intent")
        if payment.get("status") != "paid" or not intent:
            continue
        try:
            refund = stripe_api.refund_create(
                payment_intent=intent, key=f"huntaze-duplicate-refund-{intent}",
                metadata={"agency": agency_ref(agency_id), "subscription": str(subscription.get("id") or "")},
            )  # fmt: skip
        except stripe_api.BillingProviderError as error:
            if error.stripe_code != "charge_already_refunded":
                raise
            refund = {"amount": payment.get("amount_paid"), "currency": payment.get("currency")}
        currency = str(refund.get("currency") or payment.get("currency") or "usd")
        refunded[currency] = refunded.get(currency, 0) + int(refund.get("amount") or 0)
    return refunded


def _paid_twice_notify(row: Subscription, *, what: str, amounts: str) -> None:
    from apps.notifications.services import notification_send

    body = (
        f"Two Checkout pages were paid for {row.agency.name}. You keep your {row.plan.name} plan; the second "
        f"{what} was cancelled at once"
        + (f" and its payment of {amounts} refunded to the card that paid it (banks take 5 to 10 days to show it)."
           if amounts else ".")
    )  # fmt: skip
    for owner in _owners(row.agency_id):
        notification_send(membership=owner, title="You paid twice: the second payment is refunded" if amounts
                          else "You subscribed twice: the second subscription is cancelled", body=body,
                          url=reverse("billing:overview"), level="warning")  # fmt: skip


def _sync(
    subscription_id: str | None, *, fallback: dict | None, event: BillingEvent, reason: str
) -> Subscription | None:
    """Re-read the subscription from Stripe and apply it as of now; when Stripe cannot be
    reached, apply the event's own snapshot as of the event's creation (ignored if older)."""
    if not subscription_id:
        return None
    # The moment the read starts: a read that starts later sees at least as much, so it must win
    # over this one even when this one's answer arrives last.
    as_of = timezone.now()
    try:
        current = stripe_api.subscription_retrieve(subscription_id)
    except stripe_api.BillingProviderError:
        if fallback is None:
            raise
        current, as_of = fallback, event.created
    return subscription_apply(stripe_subscription=current, as_of=as_of, reason=reason)


def _invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    found = invoice.get("subscription")
    if isinstance(found, dict):
        found = found.get("id")
    if not found:  # API versions from 2025 keep it under parent.subscription_details
        found = (((invoice.get("parent") or {}).get("subscription_details")) or {}).get("subscription")
    return found or None


def _invoice_event(kind: str, invoice: dict[str, Any], event: BillingEvent, reason: str) -> int | None:
    """An invoice's subscription re-read from Stripe and applied: Stripe's own status is then the
    truth, and the invoice changes nothing more (a late or redelivered ``payment_failed`` must not
    put an agency that has paid since into dunning, nor a late ``paid`` lift a newer failure).
    Only when Stripe cannot be reached does the invoice itself say whether it was paid, and only
    if it is newer than the state the row holds."""
    subscription_id = _invoice_subscription_id(invoice)
    if subscription_id:
        try:
            row = _sync(subscription_id, fallback=None, event=event, reason=reason)
        except stripe_api.BillingProviderError:
            row = None
        else:
            if row is not None:
                invoices_forget(row.agency_id)
                return row.agency_id
    with transaction.atomic():
        row = _subscription_for(customer=invoice.get("customer"), subscription_id=subscription_id, ref=None)
    if row is None:
        return None
    invoices_forget(row.agency_id)
    if subscription_id and row.stripe_subscription_id and subscription_id != row.stripe_subscription_id:
        logger.info("stripe invoice event %s ignored: about %s, not the agency's %s", event.stripe_id,
                    subscription_id, row.stripe_subscription_id)  # fmt: skip
        return row.agency_id
    if row.stripe_synced_at is not None and event.created < row.stripe_synced_at:
        logger.info("stripe invoice event %s ignored: older than the state applied", event.stripe_id)
        return row.agency_id
    if kind == "invoice.paid" and row.status == Subscription.Status.PAST_DUE:
        _status_set(row.agency_id, Subscription.Status.ACTIVE, as_of=event.created,
                    reason=f"Stripe: invoice {invoice.get('number') or ''} paid.")  # fmt: skip
    elif kind == "invoice.payment_failed" and row.status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        _status_set(
            row.agency_id, Subscription.Status.PAST_DUE, as_of=event.created,
            reason=f"Stripe: payment of invoice {invoice.get('number') or ''} failed.",
        )  # fmt: skip
    return row.agency_id


def _status_set(agency_id: int, status: str, *, as_of: datetime, reason: str) -> None:
    with transaction.atomic():
        row = Subscription.objects.select_for_update().select_related("plan").get(agency_id=agency_id)
        if row.stripe_synced_at is not None and as_of < row.stripe_synced_at:
            return  # a newer state was applied meanwhile
        before = (row.plan, row.status)
        row.status = status
        row.stripe_synced_at = as_of
        entering = dunning_update(row, status)
        row.save()
        record_change(row, from_plan=before[0], from_status=before[1], by=None, reason=reason)
    if entering:
        transaction.on_commit(lambda: dunning_email_send(agency_id=agency_id))


# --- Invoices ----------------------------------------------------------------------------------


@dataclass
class Invoice:
    id: str
    number: str
    created: datetime | None
    amount: Decimal
    currency: str
    status: str
    hosted_invoice_url: str
    invoice_pdf: str


def _invoices_key(agency_id: int) -> str:
    return f"billing:invoices:{agency_id}"


def invoices_forget(agency_id: int) -> None:
    transaction.on_commit(lambda: cache.delete(_invoices_key(agency_id)))


def _amount(minor: Any, currency: str) -> Decimal:
    value = Decimal(int(minor or 0))
    return value if currency.lower() in ZERO_DECIMAL_CURRENCIES else (value / 100).quantize(Decimal("0.01"))


def _https(url: Any) -> str:
    return url if isinstance(url, str) and url.startswith("https://") else ""


def invoice_list(*, membership: Membership) -> list[Invoice]:
    """The agency's Stripe invoices, newest first, cached BILLING_INVOICE_CACHE_SECONDS. Empty
    without Stripe or a customer; BillingProviderError when Stripe fails."""
    require(membership, Perm.MANAGE_BILLING)
    if not stripe_api.stripe_enabled():
        return []
    customer = (
        Subscription.objects.filter(agency_id=membership.agency_id).values_list("stripe_customer_id", flat=True).first()
    )
    if not customer:
        return []
    key = _invoices_key(membership.agency_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    found = []
    for row in stripe_api.invoice_list(customer=customer):
        currency = str(row.get("currency") or "usd")
        found.append(
            Invoice(
                id=str(row.get("id") or ""),
                number=str(row.get("number") or "")[:60],
                created=_moment(row.get("created")),
                amount=_amount(row.get("total", row.get("amount_due")), currency),
                currency=currency.upper()[:3],
                status=str(row.get("status") or "")[:20],
                hosted_invoice_url=_https(row.get("hosted_invoice_url")),
                invoice_pdf=_https(row.get("invoice_pdf")),
            )
        )
    cache.set(key, found, settings.BILLING_INVOICE_CACHE_SECONDS)
    return found


# --- Usage to Stripe's meter -------------------------------------------------------------------


def _previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def overage_credits(agency_id: int, month: date) -> int:
    """The month's AI credits past the plan's monthly credits: what the meter bills. The plan's
    own credits are in its price; a plan without a credit limit has no overage."""
    included = entitlements.entitlements_for(agency_id).limits.get("ai_credits")
    if included is None:
        return 0
    used = entitlements.usd_to_credits(entitlements.ledger_usd(agency_id, month))
    return max(0, used - included)


def usage_report(*, agency_id: int, month: date) -> int:
    """Report the month's AI overage not yet reported for one agency (``overage_credits``: the
    credits past the plan's own); answers the credits sent.

    A report row (its identifier derived from agency, month and sequence) is committed before
    the call and marked sent after it: a crash in between leaves it unsent, and the next run sends
    that same identifier again, which Stripe counts once. Nothing new is reported while an older
    report is unsent. The plan of the moment decides what is included, also for last month's
    tail; an upgrade that includes more than was already reported sends nothing more."""
    customer = Subscription.objects.filter(agency_id=agency_id).values_list("stripe_customer_id", flat=True).first()
    if not customer:
        return 0
    pending = (
        UsageReport.objects.filter(agency_id=agency_id, sent_at__isnull=True).order_by("month", "sequence").first()
    )
    if pending is None:
        total = overage_credits(agency_id, month)
        last = UsageReport.objects.filter(agency_id=agency_id, month=month).order_by("-sequence").first()
        reported = last.cumulative_credits if last else 0
        if total <= reported:
            return 0
        sequence = (last.sequence if last else 0) + 1
        try:
            pending = UsageReport.objects.create(
                agency_id=agency_id, month=month, sequence=sequence, credits=total - reported,
                cumulative_credits=total, identifier=f"hz-{agency_ref(agency_id)}-{month:%Y%m}-{sequence}",
            )  # fmt: skip
        except IntegrityError:
            return 0  # another worker wrote this sequence: it reports it
    _, end = entitlements.month_bounds(pending.month)
    # The report's own moment, so a re-send repeats the very same request (Stripe's idempotency).
    timestamp = int(min(pending.created_at, end - timedelta(seconds=1)).timestamp())
    try:
        stripe_api.meter_event_create(
            customer=customer, value=pending.credits, identifier=pending.identifier, timestamp=timestamp
        )
    except stripe_api.BillingProviderError as error:
        if error.stripe_code != "resource_already_exists":  # already counted by Stripe: done
            UsageReport.objects.filter(pk=pending.pk).update(error=error.message[:300])
            raise
    UsageReport.objects.filter(pk=pending.pk, sent_at__isnull=True).update(sent_at=timezone.now(), error="")
    return pending.credits


def usage_report_all(*, now: datetime | None = None) -> dict[str, int]:
    """The beat task's work: every agency billed by Stripe with overage on, this month and the
    tail of the last one. One agency's Stripe error does not stop the others."""
    if not stripe_api.stripe_enabled():
        return {"agencies": 0, "credits": 0, "errors": 0}
    month = entitlements.month_start(now)
    today = (now or timezone.now()).astimezone(UTC).date()  # months are UTC months (entitlements.month_start)
    agencies = Subscription.objects.filter(source=Subscription.Source.STRIPE, overage_allowed=True).exclude(
        stripe_customer_id=""
    )
    totals = {"agencies": 0, "credits": 0, "errors": 0}
    for agency_id in agencies.values_list("agency_id", flat=True):
        totals["agencies"] += 1
        previous = _previous_month(month)
        periods = [month]
        # Last month's tail: for an agency already reporting then, and for any agency during the
        # first two days (it may have passed its plan's credits after the last hourly run).
        if (today - month).days < 2 or UsageReport.objects.filter(agency_id=agency_id, month=previous).exists():
            periods.insert(0, previous)
        for period in periods:
            try:
                totals["credits"] += usage_report(agency_id=agency_id, month=period)
            except stripe_api.BillingProviderError:
                totals["errors"] += 1
                break
    return totals


# --- Read-only agencies: running campaigns pause -------------------------------------------------


def readonly_campaigns_pause(*, agency_id: int, now: datetime | None = None) -> int:
    """A read-only agency sends nothing more: its campaigns that are sending pause (through the
    campaigns app's own service, as an owner would) and the owners are told why. Answers how many
    paused; none when the agency is not read-only. Resuming is the owner's choice once it pays."""
    from apps.campaigns import selectors as campaign_selectors
    from apps.campaigns import services as campaign_services
    from apps.campaigns.models import CampaignStatus
    from apps.notifications.services import notification_send

    reason = entitlements.entitlements_for(agency_id).readonly_reason(now)
    owners = _owners(agency_id)
    if not reason or not owners:
        return 0
    paused = 0
    for campaign in campaign_selectors.campaign_list(membership=owners[0], status=CampaignStatus.SENDING):
        try:
            campaign_services.campaign_pause(membership=owners[0], campaign=campaign)
        except ApplicationError:
            continue  # it finished or was paused meanwhile
        paused += 1
        for owner in owners:
            notification_send(
                membership=owner,
                title=f"Campaign “{campaign.name}” paused: your agency is read-only",
                body=entitlements.READONLY_MESSAGES[reason],
                url=reverse("billing:overview"),
                level="warning",
                kind="campaigns",
            )
    return paused


def dunning_tick(*, now: datetime | None = None) -> dict[str, int]:
    """The beat task's work: agencies whose trial or grace period has ended, or whose subscription
    is canceled, get their snapshot refreshed and their sending campaigns paused."""
    from apps.campaigns.models import Campaign, CampaignStatus

    now = now or timezone.now()
    sending = Campaign.objects.filter(agency_id=OuterRef("agency_id"), status=CampaignStatus.SENDING)
    ended = Subscription.objects.filter(
        Q(status=Subscription.Status.TRIALING, trial_ends_at__lte=now)
        | Q(status=Subscription.Status.PAST_DUE, grace_ends_at__lte=now)
        | Q(status=Subscription.Status.CANCELED),
        Exists(sending),  # only agencies with something to pause: cancelled ones pile up forever
    )
    totals = {"agencies": 0, "campaigns_paused": 0}
    for agency_id in ended.values_list("agency_id", flat=True):
        totals["agencies"] += 1
        totals["campaigns_paused"] += readonly_campaigns_pause(agency_id=agency_id, now=now)
    return totals
