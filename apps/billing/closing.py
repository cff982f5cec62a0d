"""Billing's part in closing an agency (apps/accounts/account_deletion.py asks every app's
``closing.py`` before the agency's rows are deleted): its Stripe subscription is cancelled at
once, so the customer is not charged for an agency that no longer exists.

When Stripe refuses or cannot be reached, ApplicationError: the deletion is refused and nothing
is deleted (the user tries again later). A subscription Stripe no longer knows, or one already
cancelled there, has nothing left to cancel. A manual subscription (the embedded default, an
admin's plan) has nothing to cancel either. Not here: refunds (Stripe's default for a cancel
is no proration and no final invoice; the operator refunds from Stripe's dashboard if they wish).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apps.accounts.models import Agency
from apps.billing import stripe_api
from apps.billing.models import Subscription
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

ALREADY_GONE = frozenset({"resource_missing"})


def agency_closing(*, agency: Agency) -> Callable[[], None] | None:
    """Check now (before anything is deleted) and answer what to do last: cancel the Stripe
    subscription once the agency's rows are deleted in the same transaction, so a failure of the
    deletion itself never leaves a live agency without its subscription."""
    row = (
        Subscription.objects.filter(agency=agency, source=Subscription.Source.STRIPE)
        .exclude(stripe_subscription_id="")
        .exclude(status=Subscription.Status.CANCELED)
        .first()
    )
    if row is None:
        return None
    if not stripe_api.stripe_enabled():
        raise ApplicationError(
            f"{agency.name} pays through Stripe, but online payment is not set up on this Huntaze any more, so "
            "its subscription cannot be cancelled from here. Nothing was deleted: ask the operator to cancel "
            "it in Stripe first."
        )
    subscription_id, name, agency_id = row.stripe_subscription_id, agency.name, agency.pk
    return lambda: _cancel(subscription_id, name=name, agency_id=agency_id)


def _cancel(subscription_id: str, *, name: str, agency_id: int) -> None:
    try:
        stripe_api.subscription_cancel(subscription_id, comment=stripe_api.CLOSED_AGENCY_COMMENT)
    except stripe_api.BillingProviderError as error:
        if error.stripe_code in ALREADY_GONE:
            return
        raise ApplicationError(
            f"The Stripe subscription of {name} could not be cancelled, so nothing was deleted and you "
            f"are still signed in. {error.message}",
            extra={"retryable": error.retryable},
        ) from error
    logger.info("stripe subscription of closing agency %s cancelled", agency_id)
