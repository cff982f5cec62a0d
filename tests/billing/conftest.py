"""Billing fixtures: the plan catalogue (a transactional test elsewhere may have flushed the
migration's rows) and a way to put an agency on a plan."""

from __future__ import annotations

import pytest

from apps.billing.models import Plan
from apps.billing.services import plan_catalogue_ensure, subscription_assign


@pytest.fixture
def fans(world):
    """Five fans of the world's first creator (as tests/campaigns has them)."""
    from tests.messaging.factories import FanFactory

    return [FanFactory(creator=world.creator, display_name=f"Fan{index} Last") for index in range(5)]


@pytest.fixture(autouse=True)
def catalogue(db, settings) -> dict[str, Plan]:
    settings.BILLING_TRIAL_PLAN = "agency"
    return {plan.code: plan for plan in plan_catalogue_ensure()}


def put_on_plan(agency, code: str = "creator", *, by=None, overage_allowed: bool | None = None, **limits):
    """Put ``agency`` on the catalogue plan ``code``, or on a plan made for the test when limits
    or features are given (``max_creators=2``, ``feature_campaigns=False``…)."""
    plan = Plan.objects.get(code=code)
    if limits:
        values = {field.name: getattr(plan, field.name) for field in Plan._meta.concrete_fields if field.name != "id"}
        values.update(limits, code=f"{code}-test-{Plan.objects.count()}", name=f"{plan.name} (test)")
        plan = Plan.objects.create(**values)
    return subscription_assign(agency=agency, plan=plan, by=by, overage_allowed=overage_allowed, reason="test")


@pytest.fixture(scope="session")
def stripe_server():
    """The loopback Stripe (tests/fakes/stripe_server.py), one per test run."""
    from tests.fakes.stripe_server import FakeStripe

    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_on(stripe_server, settings, catalogue):
    """Online billing on, the official SDK pointed at the fake, a Stripe price on each plan."""
    from tests.fakes.stripe_server import SECRET_KEY, WEBHOOK_SECRET

    stripe_server.reset()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.SITE_URL = "https://app.huntaze.test"
    for plan in catalogue.values():
        plan.stripe_price_id = stripe_server.add_price(int(plan.monthly_price_usd * 100))["id"]
        plan.save(update_fields=["stripe_price_id"])
    return stripe_server
