"""API: billing (mounted at /api/v1/ by huntaze/api.py); docs/api-billing.md.

The agency's plan, subscription, entitlements and usage (every member may read them: they explain
what the product refuses), its Stripe invoices and, for owners, a Checkout Session or a customer
portal session to open in a browser. The same services as the billing page
(apps/billing/selectors.py, apps/billing/stripe_sync.py). Without Stripe configured, checkout and
portal answer 409 ``billing_manual``; a Stripe failure answers 502 ``billing_provider``.
"""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.billing import entitlements, stripe_api, stripe_sync
from apps.billing.models import Subscription
from apps.billing.selectors import credits_forecast, usage_list
from apps.core.openapi import ErrorOut

router = Router(tags=["billing"])


class UsageOut(Schema):
    name: str
    used: int
    limit: int | None = Field(description="null: unlimited")


class BillingOut(Schema):
    plan_code: str
    plan_name: str
    status: str = Field(description="trialing, active, past_due or canceled")
    source: str = Field(description="manual (assigned by an administrator) or stripe")
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    grace_ends_at: datetime | None = Field(description="past_due: when the agency becomes read-only")
    read_only: bool
    read_only_reason: str = Field(description="'' or trial, payment, canceled")
    overage_allowed: bool
    features: list[str]
    usage: list[UsageOut]
    ai_credits_forecast: int = Field(description="This month's AI credits at the pace so far")
    online_payment: bool = Field(description="Whether checkout and the portal are available")


class InvoiceOut(Schema):
    id: str
    number: str
    created: datetime | None
    amount: Decimal
    currency: str
    status: str
    hosted_invoice_url: str
    invoice_pdf: str


class CheckoutIn(Schema):
    plan: str = Field(min_length=1, max_length=40, description="A plan's code, e.g. agency")


class RedirectOut(Schema):
    url: str
    plan_changed: bool = Field(False, description="true: an existing subscription moved to the plan (prorated)")


@router.get("/billing", response=BillingOut)
def billing_get(request: HttpRequest):
    membership = api_membership(request)
    agency_id = membership.agency_id
    found = entitlements.entitlements_for(agency_id)
    subscription = Subscription.objects.filter(agency_id=agency_id).first()
    usage = usage_list(agency_id=agency_id, found=found)
    credits = next(row.used for row in usage if row.name == "ai_credits")
    reason = found.readonly_reason()
    return {
        "plan_code": found.plan_code,
        "plan_name": found.plan_name,
        "status": found.status,
        "source": subscription.source if subscription else Subscription.Source.MANUAL,
        "trial_ends_at": subscription.trial_ends_at if subscription else None,
        "current_period_end": subscription.current_period_end if subscription else None,
        "cancel_at_period_end": bool(subscription and subscription.cancel_at_period_end),
        "grace_ends_at": subscription.grace_ends_at if subscription else None,
        "read_only": bool(reason),
        "read_only_reason": reason,
        "overage_allowed": found.overage_allowed,
        "features": sorted(found.features),
        "usage": [{"name": row.name, "used": row.used, "limit": row.limit} for row in usage],
        "ai_credits_forecast": credits_forecast(used=credits, now=timezone.now()),
        "online_payment": stripe_api.stripe_enabled(),
    }


@router.get("/billing/invoices", response={200: list[InvoiceOut], 502: ErrorOut})
def billing_invoices(request: HttpRequest):
    """Owners only (403 otherwise); newest first; empty without Stripe."""
    membership = api_membership(request)
    require(membership, Perm.MANAGE_BILLING)
    return stripe_sync.invoice_list(membership=membership)


@router.post("/billing/checkout", response={200: RedirectOut, 409: ErrorOut, 502: ErrorOut})
def billing_checkout(request: HttpRequest, payload: CheckoutIn):
    """Owners only: the Stripe Checkout URL to subscribe to ``plan`` (or, with a Stripe
    subscription already, the plan changed at once with proration and the billing page's URL)."""
    membership = api_membership(request)
    result = stripe_sync.checkout_start(membership=membership, plan_code=payload.plan, base_url=settings.SITE_URL)
    return {"url": result.url, "plan_changed": result.plan_changed}


@router.post("/billing/portal", response={200: RedirectOut, 409: ErrorOut, 502: ErrorOut})
def billing_portal(request: HttpRequest):
    """Owners only: the Stripe customer portal's URL (card, invoices, plan, cancellation)."""
    membership = api_membership(request)
    result = stripe_sync.portal_start(membership=membership, base_url=settings.SITE_URL)
    return {"url": result.url}
