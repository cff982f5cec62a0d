"""Demo data for monitoring: the demo agency's AI budgets, and the default SLOs when none exist
(docs/monitoring.md)."""

from __future__ import annotations

from decimal import Decimal

from apps.core.registry import DemoContext
from apps.monitoring.cost_demo import seed_budgets
from apps.monitoring.models import SLO

ORDER = 95

DEFAULT_SLOS = (
    {"name": "API availability", "indicator": SLO.Indicator.API_AVAILABILITY, "objective": Decimal("99.9"),
     "window_days": 30},
    {"name": "AI generation success", "indicator": SLO.Indicator.AI_SUCCESS, "objective": Decimal("99"),
     "window_days": 30},
    {"name": "AI latency under 5 s", "indicator": SLO.Indicator.AI_LATENCY, "objective": Decimal("95"),
     "window_days": 28, "threshold_ms": 5000},
    {"name": "Delivery success", "indicator": SLO.Indicator.DELIVERY_SUCCESS, "objective": Decimal("99.5"),
     "window_days": 30},
)  # fmt: skip


def seed(ctx: DemoContext) -> None:
    seed_budgets(ctx)
    if SLO.objects.exists():
        ctx.log("monitoring: SLOs already defined, left as they are")
        return
    slos = [SLO(**values) for values in DEFAULT_SLOS]
    for slo in slos:
        slo.full_clean()
    SLO.objects.bulk_create(slos)
    ctx.log(f"monitoring: {len(slos)} default SLOs")
