"""Demo AI budgets: an agency-wide budget with the default alert thresholds (alerts only) and a
small hard-stop budget for the first creator, so the cost page's gauges have something to show.
``seed_budgets`` is called from apps/monitoring/demo.py's ``seed()``; everything reaches the
agency by CASCADE, so ``seed_demo --reset`` removes it."""

from __future__ import annotations

from decimal import Decimal

from apps.core.registry import DemoContext
from apps.monitoring.budgets import forget_config
from apps.monitoring.models import Budget


def seed_budgets(ctx: DemoContext) -> None:
    if ctx.agency is None:
        return
    budgets = [Budget(agency=ctx.agency, creator=None, monthly_usd=Decimal("50.00"), thresholds=[50, 80, 100])]
    if ctx.creators:
        budgets.append(
            Budget(
                agency=ctx.agency,
                creator=ctx.creators[0],
                monthly_usd=Decimal("10.00"),
                thresholds=[50, 80, 100],
                hard_stop=True,
            )
        )
    Budget.objects.bulk_create(budgets)
    forget_config(ctx.agency.pk)
    ctx.log(f"AI budgets: $50.00 a month for the agency, $10.00 with a hard stop for {ctx.creators[0]}"
            if ctx.creators else "AI budgets: $50.00 a month for the agency")  # fmt: skip
