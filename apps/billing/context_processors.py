"""The billing banner on every page for an agency's members: a payment past due (with the days
left of the grace period), a read-only agency (why, and how to end it). Owners get the button
that fixes it (the Stripe portal to update the card, or the billing page); other members are told
to ask an owner. Read from the cached entitlements snapshot: no query on a page whose agency is in
good standing.

Not on the billing page itself: it says the same in its own notices, with the dates and the
buttons that fix it, so the warning shows once there."""

from __future__ import annotations

import math

from django.utils import timezone

from apps.billing import entitlements


def billing_banner(request) -> dict:
    tenant = getattr(request, "tenant", None)
    membership = tenant.membership if tenant is not None else None
    if membership is None:
        return {}
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name == "billing:overview":
        return {}
    found = entitlements.entitlements_for(membership.agency_id)
    now = timezone.now()
    reason = found.readonly_reason(now)
    if reason:
        return {
            "billing_banner": {
                "level": "readonly",
                "reason": reason,
                "message": entitlements.READONLY_MESSAGES[reason],
                "is_owner": membership.role == "owner",
            }
        }
    if found.status == "past_due" and found.grace_ends_at is not None:
        days = max(0, math.ceil((found.grace_ends_at - now.timestamp()) / 86400))
        return {
            "billing_banner": {
                "level": "past_due",
                "reason": "payment",
                "days_left": days,
                "message": f"Your last payment failed. Update your payment method within {days} "
                f"day{'s' if days != 1 else ''} or your agency becomes read-only.",
                "is_owner": membership.role == "owner",
            }
        }
    return {}
