"""Demo data for billing: the demo agency on the Agency plan, active (assigned by hand)."""

from __future__ import annotations

from apps.billing.models import Plan
from apps.billing.services import plan_catalogue_ensure, subscription_assign
from apps.core.registry import DemoContext

ORDER = 5  # right after accounts: later hooks create data the plan must allow


def seed(ctx: DemoContext) -> None:
    plan_catalogue_ensure()
    plan = Plan.objects.get(code="agency")
    if plan.max_creators is not None and len(ctx.creators) > plan.max_creators:
        # More demo creators than the Agency plan has room for (seed_demo --creators): none of them
        # should be read-only in the demo.
        plan = Plan.objects.get(code="enterprise")
    subscription_assign(agency=ctx.agency, plan=plan, by=None, reason="Demo data.")
    ctx.log(f"billing: {ctx.agency.name} on the {plan.name} plan, active")
