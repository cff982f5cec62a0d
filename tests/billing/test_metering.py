"""AI overage reported to Stripe's meter: the ledger's credits past the plan's monthly credits,
since the last report, once each, with an identifier per agency, month and sequence, so a crash
between the report and its bookkeeping never counts a credit twice."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.billing import entitlements
from apps.billing.entitlements import month_start
from apps.billing.models import Plan, Subscription, UsageReport
from apps.billing.stripe_sync import usage_report, usage_report_all
from tests.billing.test_stripe import subscribe

pytestmark = pytest.mark.django_db


def spend(world, usd: str) -> None:
    AIRequestLog.objects.create(agency=world.agency, feature="studio.caption", cost_usd=Decimal(usd),
                                created_at=timezone.now())  # fmt: skip


INCLUDED = 100  # the plan's monthly credits in these tests ($1.00 of AI cost)


@pytest.fixture
def metered(world, stripe_on):
    subscribe(world, stripe_on, "enterprise")
    Plan.objects.filter(code="enterprise").update(ai_credits_monthly=INCLUDED)
    Subscription.objects.filter(agency=world.agency).update(overage_allowed=True)
    entitlements.invalidate(world.agency.pk)
    return stripe_on


def test_the_plans_own_credits_are_not_metered(world, metered):
    spend(world, "0.999")  # 100 credits: all of them included in the plan's price
    assert usage_report_all() == {"agencies": 1, "credits": 0, "errors": 0}
    assert not metered.meter_events and not UsageReport.objects.exists()


def test_overage_since_the_last_report_is_sent_once(world, metered):
    spend(world, "1.234")  # 124 credits: 24 past the plan's 100
    assert usage_report_all() == {"agencies": 1, "credits": 24, "errors": 0}
    (event,) = metered.meter_events
    customer = Subscription.objects.get(agency=world.agency).stripe_customer_id
    assert event["event_name"] == "ai_credits"
    assert event["payload"] == {"stripe_customer_id": customer, "value": "24"}
    assert event["identifier"] == f"hz-agency-{world.agency.pk}-{month_start():%Y%m}-1"
    assert usage_report_all()["credits"] == 0  # nothing new
    spend(world, "0.50")
    assert usage_report_all()["credits"] == 50
    assert [event["payload"]["value"] for event in metered.meter_events] == ["24", "50"]


def test_a_report_left_unsent_by_a_crash_is_sent_again_with_the_same_identifier(world, metered):
    spend(world, "1.10")  # 10 credits past the plan's
    month = month_start()
    usage_report(agency_id=world.agency.pk, month=month)
    # The worker died after Stripe counted the event but before the row was marked sent.
    UsageReport.objects.filter(agency=world.agency).update(sent_at=None)
    time.sleep(1.1)  # the re-send comes later: it must still be the very same request
    spend(world, "0.05")
    assert usage_report(agency_id=world.agency.pk, month=month) == 10  # the old report, not a new one
    assert len(metered.meter_events) == 1  # Stripe dedupes the identifier: counted once
    assert usage_report(agency_id=world.agency.pk, month=month) == 5
    assert sum(int(event["payload"]["value"]) for event in metered.meter_events) == 15


def test_stripe_failing_leaves_the_report_to_retry(world, metered):
    spend(world, "1.20")  # 20 credits past the plan's
    for _ in range(3):
        metered.fail_next(500)
    assert usage_report_all()["errors"] == 1
    report = UsageReport.objects.get(agency=world.agency)
    assert report.sent_at is None and "Stripe" in report.error
    assert usage_report_all()["credits"] == 20
    assert len(metered.meter_events) == 1


def test_agencies_without_overage_are_not_metered(world, stripe_on):
    subscribe(world, stripe_on, "agency")
    spend(world, "1.00")
    assert usage_report_all()["agencies"] == 0 and not stripe_on.meter_events


def test_overage_passed_after_the_months_last_report_is_sent_when_the_month_turns(world, metered):
    from datetime import UTC, datetime, timedelta

    # 31 December 23:00: 90 of the plan's 100 credits, no overage, nothing reported. By 23:40: 150.
    last_month = month_start() - timedelta(days=1)
    evening = datetime(last_month.year, last_month.month, last_month.day, 23, 40, tzinfo=UTC)
    AIRequestLog.objects.create(agency=world.agency, feature="studio.caption", cost_usd=Decimal("1.50"),
                                created_at=evening)  # fmt: skip
    assert not UsageReport.objects.exists()
    first_hour = datetime.combine(month_start(), datetime.min.time(), tzinfo=UTC) + timedelta(minutes=5)
    assert usage_report_all(now=first_hour)["credits"] == 50
    (report,) = UsageReport.objects.all()
    assert report.month == last_month.replace(day=1) and report.credits == 50
