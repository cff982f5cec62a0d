"""Demo AI budgets and five weeks of AI usage history, so the cost page has something to show.

The history is what an agency of this size spends with hosted models: inbox replies and upsells
on gpt-4o-mini, studio captions and ideas on gpt-4o and claude-haiku-4-5, weekly campaign
personalisation on gpt-4o-mini, with some cache hits, a few retried calls and the occasional
failure. The costs come from the price table (apps/ai/pricing.py), so the page's savings advice
and forecast work on it as on real usage. The budgets: one for the agency with the default alert
thresholds (alerts only), and a small hard-stop budget for the first creator, both above the
history's monthly spend so nothing in the demo is refused. ``seed_budgets`` is called from
apps/monitoring/demo.py's ``seed()``; everything reaches the agency by CASCADE, so
``seed_demo --reset`` removes it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.ai.pricing import cost_usd, price_version
from apps.ai.types import Usage
from apps.core.registry import DemoContext
from apps.monitoring.budgets import forget_config
from apps.monitoring.models import Budget

HISTORY_DAYS = 35
# feature, provider, model, calls a creator makes on a weekday, input tokens, output tokens
USAGE = (
    ("inbox.reply", "openai", "gpt-4o-mini", 60, 1100, 110),
    ("inbox.upsell", "openai", "gpt-4o-mini", 12, 1200, 140),
    ("studio.caption", "openai", "gpt-4o", 6, 1500, 260),
    ("studio.idea", "anthropic", "claude-haiku-4-5", 3, 1300, 700),
)
PERSONALIZE = ("campaigns.personalize", "openai", "gpt-4o-mini", 120, 900, 80)  # on Mondays


def seed_budgets(ctx: DemoContext) -> None:
    if ctx.agency is None:
        return
    rows = _history(ctx)
    budgets = [Budget(agency=ctx.agency, creator=None, monthly_usd=Decimal("12.00"), thresholds=[50, 80, 100])]
    if ctx.creators:
        budgets.append(
            Budget(
                agency=ctx.agency,
                creator=ctx.creators[0],
                monthly_usd=Decimal("4.00"),
                thresholds=[50, 80, 100],
                hard_stop=True,
            )
        )
    Budget.objects.bulk_create(budgets)
    forget_config(ctx.agency.pk)
    first = f", $4.00 with a hard stop for {ctx.creators[0]}" if ctx.creators else ""
    ctx.log(f"AI cost: {rows} ledger rows over {HISTORY_DAYS} days; budgets $12.00 a month for the agency{first}")


def _history(ctx: DemoContext) -> int:
    rng = ctx.rng
    now = timezone.now()
    version = price_version()
    rows = []
    for days_ago in range(HISTORY_DAYS, -1, -1):
        day = (now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)
        usage = USAGE + ((PERSONALIZE,) if day.weekday() == 0 else ())
        weekend = 1.3 if day.weekday() >= 5 else 1.0  # fans write more at the weekend
        for creator in ctx.creators:
            for feature, provider, model, calls, input_tokens, output_tokens in usage:
                for _ in range(max(0, round(rng.gauss(calls * weekend, calls * 0.2)))):
                    at = day + timedelta(seconds=rng.randrange(86400))
                    if at > now:
                        continue
                    rows.append(_row(ctx, creator, at, feature, provider, model, input_tokens, output_tokens, version))
    AIRequestLog.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _row(ctx, creator, at, feature, provider, model, input_tokens, output_tokens, version) -> AIRequestLog:
    rng = ctx.rng
    tokens_in = max(50, int(rng.gauss(input_tokens, input_tokens * 0.25)))
    tokens_out = max(5, int(rng.gauss(output_tokens, output_tokens * 0.3)))
    roll = rng.random()
    cache_hit = roll < 0.08
    failed = provider == "anthropic" and roll > 0.97
    attempts = 0 if cache_hit else (2 if roll > 0.93 else 1)
    cost = (
        Decimal(0) if cache_hit or failed else cost_usd(model, Usage(input_tokens=tokens_in, output_tokens=tokens_out))
    )
    latency = rng.uniform(5, 20) if cache_hit else rng.lognormvariate(7.0 if "studio" in feature else 6.5, 0.4)
    return AIRequestLog(
        agency=ctx.agency,
        creator=creator,
        feature=feature,
        provider=provider,
        model=model,
        input_tokens=0 if failed else tokens_in,
        output_tokens=0 if failed or cache_hit else tokens_out,
        cost_usd=cost,
        price_version=version,
        latency_ms=latency,
        cache_hit=cache_hit,
        attempts=attempts or (1 if failed else 0),
        error_kind="SERVER_ERROR" if failed else "",
        created_at=at,
    )
