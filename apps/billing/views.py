"""Billing pages: the agency's billing page (owners only: plan, usage, invoices, checkout and the
payment portal), the pricing page (anyone) and Stripe's webhook endpoint (no session: Stripe's
signature is its authentication)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm
from apps.billing import entitlements, selectors, stripe_api, stripe_sync
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

CHECKOUT_RETURNS = {
    "success": (messages.SUCCESS, "Thank you! Your payment went through; your plan updates here as soon as "
                "Stripe confirms it (usually within seconds)."),
    "cancelled": (messages.INFO, "Checkout cancelled: nothing was charged and your plan did not change."),
}  # fmt: skip


@member_required(Perm.MANAGE_BILLING)
def billing_overview(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    returned = CHECKOUT_RETURNS.get(request.GET.get("checkout", ""))
    if returned:
        messages.add_message(request, *returned)
        return redirect("billing:overview")
    context = selectors.billing_overview(membership=membership)
    context["stripe_enabled"] = stripe_api.stripe_enabled()
    context["plans"] = list(selectors.plan_list())
    context["invoices"], context["invoices_error"] = [], ""
    try:
        context["invoices"] = stripe_sync.invoice_list(membership=membership)
    except stripe_api.BillingProviderError as error:
        context["invoices_error"] = f"Your invoices could not be loaded from Stripe just now. {error.message}"
    return render(request, "billing/overview.html", context)


@require_POST
@member_required(Perm.MANAGE_BILLING)
def checkout(request: HttpRequest) -> HttpResponse:
    try:
        result = stripe_sync.checkout_start(
            membership=request.tenant.membership,
            plan_code=request.POST.get("plan", "")[:40],
            base_url=settings.SITE_URL,
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("billing:overview")
    if result.plan_changed:
        messages.success(request, "Your plan changed. Stripe prorates it: the unused part of this period is "
                         "credited on your next invoice.")  # fmt: skip
        return redirect("billing:overview")
    return redirect(result.url)


@require_POST
@member_required(Perm.MANAGE_BILLING)
def portal(request: HttpRequest) -> HttpResponse:
    try:
        result = stripe_sync.portal_start(membership=request.tenant.membership, base_url=settings.SITE_URL)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("billing:overview")
    return redirect(result.url)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """400 for anything not signed by Stripe with our secret (Stripe's convention; nothing is
    stored), 200 once the event is stored and processed (or was already), 409 while another
    delivery of the same event is being processed and 503 when Stripe itself could not be reached
    to process it (Stripe delivers it again later in both cases)."""
    try:
        event = stripe_sync.webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except stripe_sync.WebhookSignatureError as error:
        logger.warning("stripe webhook refused (%s) from %s", error, request.META.get("REMOTE_ADDR"))
        return JsonResponse({"error": {"code": "bad_signature", "message": "Invalid Stripe signature."}}, status=400)
    if event.processed_at is None and event.claimed_at is None:
        return JsonResponse(
            {"error": {"code": "stripe_unreachable", "message": "Stripe could not be reached to process this event; "
                                                                "deliver it again later."}},
            status=503,
        )  # fmt: skip
    if event.processed_at is None:
        return JsonResponse(
            {
                "error": {
                    "code": "event_in_progress",
                    "message": "This event is being processed; deliver it again later.",
                }
            },
            status=409,
        )
    return JsonResponse({"received": True, "id": event.stripe_id, "flagged": event.flagged})


def pricing(request: HttpRequest) -> HttpResponse:
    """The plans compared; the agency's current plan marked when a member is signed in."""
    tenant = getattr(request, "tenant", None)
    membership = tenant.membership if tenant is not None else None
    current = entitlements.entitlements_for(membership.agency_id).plan_code if membership else ""
    return render(
        request,
        "billing/pricing.html",
        {
            "plans": list(selectors.plan_list()),
            "current": current,
            "features": entitlements.FEATURE_LABELS,
            "is_owner": membership is not None and membership.role == "owner",
            "stripe_enabled": stripe_api.stripe_enabled(),
        },
    )
