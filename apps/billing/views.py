"""Billing pages: the agency's billing page (owners only) and the pricing page (anyone)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm
from apps.billing import entitlements, selectors


@member_required(Perm.MANAGE_BILLING)
def billing_overview(request: HttpRequest) -> HttpResponse:
    context = selectors.billing_overview(membership=request.tenant.membership)
    return render(request, "billing/overview.html", context)


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
        },
    )
