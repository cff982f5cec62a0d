"""The starting plan catalogue (apps/billing/catalogue.py), and a trial of the Agency plan for
every agency that existed before billing."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    from apps.billing.catalogue import PLANS

    Plan = apps.get_model("billing", "Plan")
    Agency = apps.get_model("accounts", "Agency")
    Subscription = apps.get_model("billing", "Subscription")
    SubscriptionChange = apps.get_model("billing", "SubscriptionChange")
    for values in PLANS:
        Plan.objects.get_or_create(code=values["code"], defaults=values)
    plan = Plan.objects.get(code="agency")
    now = timezone.now()
    for agency in Agency.objects.filter(subscription__isnull=True).iterator():
        ends = now + timedelta(days=plan.trial_days)
        subscription = Subscription.objects.create(
            agency=agency, plan=plan, status="trialing", source="manual", trial_ends_at=ends,
            current_period_start=now, current_period_end=ends,
        )
        SubscriptionChange.objects.create(
            agency=agency, subscription=subscription, to_plan=plan, to_status="trialing",
            reason="Trial started when billing was introduced.",
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
