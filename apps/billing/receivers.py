"""Signal receivers: a new agency starts its trial; a change to an agency's creators, its
subscription or a plan drops the cached entitlements and, once committed, raises the agency's
entitlements version (apps/billing/entitlements.py). Connected in BillingConfig.ready, so
accounts never imports billing."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save


def _agency_created(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        from apps.billing.services import subscription_start_trial

        subscription_start_trial(agency=instance)


def _creator_changed(sender, instance, raw: bool = False, **kwargs) -> None:
    # Which creators are read-only depends on the active ones: dropped at once, and the agency's
    # entitlements version raised once committed, so other web processes drop their copy too.
    if not raw:
        from apps.billing.entitlements import invalidate_on_commit

        invalidate_on_commit(instance.agency_id)


def _plan_changed(sender, instance, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    from apps.billing.entitlements import invalidate_on_commit
    from apps.billing.models import Subscription

    agency_ids = list(Subscription.objects.filter(plan=instance).values_list("agency_id", flat=True))
    if agency_ids:
        invalidate_on_commit(*agency_ids)


def _subscription_changed(sender, instance, raw: bool = False, **kwargs) -> None:
    if not raw:
        from apps.billing.entitlements import invalidate_on_commit

        invalidate_on_commit(instance.agency_id)


def connect() -> None:
    from apps.accounts.models import Agency, Creator
    from apps.billing.models import Plan, Subscription

    post_save.connect(_agency_created, sender=Agency, dispatch_uid="billing-agency-trial")
    post_save.connect(_creator_changed, sender=Creator, dispatch_uid="billing-creator-saved")
    post_delete.connect(_creator_changed, sender=Creator, dispatch_uid="billing-creator-deleted")
    post_save.connect(_plan_changed, sender=Plan, dispatch_uid="billing-plan-saved")
    post_save.connect(_subscription_changed, sender=Subscription, dispatch_uid="billing-subscription-saved")
    post_delete.connect(_subscription_changed, sender=Subscription, dispatch_uid="billing-subscription-deleted")
