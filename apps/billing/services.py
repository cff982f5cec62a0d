"""Writes for billing: the plan catalogue, a new agency's trial, assigning a plan by hand.

Every change to a subscription writes a SubscriptionChange (who, from what, to what, why) and
drops the agency's cached entitlements on commit. A plan change never deletes anything: what no
longer fits the plan becomes read-only (apps/billing/entitlements.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Agency, User
from apps.billing import entitlements
from apps.billing.catalogue import PLANS
from apps.billing.models import Plan, Subscription, SubscriptionChange
from apps.core.errors import ApplicationError


def plan_catalogue_ensure() -> list[Plan]:
    """Create the catalogue's plans that are missing (existing ones are left as edited)."""
    plans = []
    for values in PLANS:
        plan, _ = Plan.objects.get_or_create(code=values["code"], defaults=values)
        plans.append(plan)
    return plans


def record_change(
    subscription: Subscription, *, from_plan: Plan | None, from_status: str, by: User | None, reason: str
) -> None:
    """Audit one change of a subscription (apps/billing/stripe_sync.py uses it too) and drop the
    agency's cached entitlements on commit."""
    SubscriptionChange.objects.create(
        agency_id=subscription.agency_id,
        subscription=subscription,
        from_plan=from_plan,
        to_plan=subscription.plan,
        from_status=from_status,
        to_status=subscription.status,
        by=by,
        reason=reason[:200],
    )
    entitlements.invalidate_on_commit(subscription.agency_id)


@transaction.atomic
def subscription_start_trial(*, agency: Agency, now: datetime | None = None) -> Subscription | None:
    """A new agency's trial of settings.BILLING_TRIAL_PLAN; None when the agency already has a
    subscription or that plan does not exist (the entitlements then fall back to the trial
    plan's limits, or to none)."""
    plan = Plan.objects.filter(code=settings.BILLING_TRIAL_PLAN).first()
    if plan is None or Subscription.objects.filter(agency=agency).exists():
        return None
    now = now or timezone.now()
    subscription = Subscription.objects.create(
        agency=agency,
        plan=plan,
        status=Subscription.Status.TRIALING,
        trial_ends_at=now + timedelta(days=plan.trial_days),
        current_period_start=now,
        current_period_end=now + timedelta(days=plan.trial_days),
    )
    record_change(subscription, from_plan=None, from_status="", by=None, reason="Trial started with the new agency.")
    return subscription


@transaction.atomic
def subscription_assign(
    *,
    agency: Agency,
    plan: Plan,
    status: str = Subscription.Status.ACTIVE,
    by: User | None,
    overage_allowed: bool | None = None,
    trial_days: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Subscription:
    """Put the agency on ``plan`` by hand (the admin, the demo). A period of a month starts now
    for an active plan; a trial runs ``trial_days`` (the plan's trial length by default)."""
    if status not in Subscription.Status.values:
        raise ApplicationError(f"“{status}” is not a subscription status.", field="status")
    now = now or timezone.now()
    subscription = Subscription.objects.select_for_update().filter(agency=agency).first()
    from_plan, from_status = (subscription.plan, subscription.status) if subscription else (None, "")
    if subscription is None:
        subscription = Subscription(agency=agency)
    subscription.plan = plan
    subscription.status = status
    subscription.source = Subscription.Source.MANUAL
    subscription.assigned_by = by
    if overage_allowed is not None:
        subscription.overage_allowed = overage_allowed
    if status == Subscription.Status.TRIALING:
        days = plan.trial_days if trial_days is None else trial_days
        if days < 0:
            raise ApplicationError("A trial cannot last a negative number of days.", field="trial_days")
        subscription.trial_ends_at = now + timedelta(days=days)
        subscription.current_period_start, subscription.current_period_end = now, subscription.trial_ends_at
    else:
        subscription.trial_ends_at = None
        subscription.current_period_start, subscription.current_period_end = now, now + timedelta(days=30)
    dunning_update(subscription, status, now=now)
    if subscription.current_period_end <= subscription.current_period_start:
        subscription.current_period_end = subscription.current_period_start + timedelta(days=1)
    subscription.save()
    record_change(subscription, from_plan=from_plan, from_status=from_status, by=by, reason=reason)
    return subscription


def dunning_update(subscription: Subscription, status: str, *, now: datetime | None = None) -> bool:
    """The grace period follows the status (not saved here): entering past due starts it (True
    then), staying past due keeps it, any other status clears it. Every writer of the status
    calls it: Stripe's sync, subscription_assign and the admin's form."""
    if status == Subscription.Status.PAST_DUE:
        if subscription.past_due_since is None:
            now = now or timezone.now()
            subscription.past_due_since = now
            subscription.grace_ends_at = now + timedelta(days=settings.BILLING_GRACE_DAYS)
            return True
        return False
    subscription.past_due_since = subscription.grace_ends_at = None
    return False


def subscription_changed(*, subscription: Subscription, before: tuple[Plan | None, str], by: User | None) -> None:
    """A subscription saved outside subscription_assign (the admin's form): record and invalidate."""
    record_change(subscription, from_plan=before[0], from_status=before[1], by=by, reason="Changed in the admin.")
