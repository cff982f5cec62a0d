"""The plans Huntaze sells, as data: what the data migration writes and ``plan_catalogue_ensure``
restores. Edit plans in the admin afterwards; this list is only the starting catalogue.

``None`` means unlimited. AI credits: 1 credit = $0.01 of AI cost in the gateway's ledger
(docs/billing.md).
"""

from __future__ import annotations

from decimal import Decimal

PLANS: list[dict] = [
    {
        "code": "creator",
        "name": "Creator",
        "position": 10,
        "monthly_price_usd": Decimal("29.00"),
        "description": "One creator running their own page.",
        "max_creators": 1,
        "max_seats": 2,
        "ai_credits_monthly": 2_000,
        "feature_inbox": True,
        "feature_campaigns": True,
        "feature_optimization": False,
        "feature_integrations": False,
        "trial_days": 14,
    },
    {
        "code": "agency",
        "name": "Agency",
        "position": 20,
        "monthly_price_usd": Decimal("199.00"),
        "description": "A team of chatters running several creators.",
        "max_creators": 10,
        "max_seats": 15,
        "ai_credits_monthly": 20_000,
        "feature_inbox": True,
        "feature_campaigns": True,
        "feature_optimization": True,
        "feature_integrations": True,
        "trial_days": 14,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "position": 30,
        "monthly_price_usd": Decimal("999.00"),
        "description": "Large agencies: no caps on creators or seats, overage on AI credits.",
        "max_creators": None,
        "max_seats": None,
        "ai_credits_monthly": 200_000,
        "feature_inbox": True,
        "feature_campaigns": True,
        "feature_optimization": True,
        "feature_integrations": True,
        "trial_days": 14,
    },
]
