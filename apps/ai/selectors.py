"""Reads for the AI pages: credentials, provider status and usage from the ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from statistics import median

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.ai.models import AIRequestLog, ProviderCredential
from apps.ai.registry import platform_configs

STATUS_WINDOW = timedelta(hours=1)
STATUS_SAMPLE = 5000


def credential_list(*, agency_id: int) -> QuerySet[ProviderCredential]:
    return ProviderCredential.objects.for_agency(agency_id).order_by("priority", "id")


def credential_get(*, agency_id: int, credential_id: int) -> ProviderCredential:
    credential = credential_list(agency_id=agency_id).filter(pk=credential_id).first()
    if credential is None:
        raise Http404("No such AI provider connection.")
    return credential


def configured_providers(*, agency_id: int) -> list[dict]:
    """The providers this agency's AI calls may use, in order, with where each comes from."""
    own = [
        {
            "name": c.provider_name,
            "label": c.label,
            "kind": c.get_kind_display(),
            "models": c.model_names,
            "source": "agency",
        }
        for c in credential_list(agency_id=agency_id).filter(is_enabled=True)
        if c.model_names
    ]
    platform = [
        {"name": c["name"], "label": c["name"], "kind": c["kind"], "models": list(c["models"]), "source": "platform"}
        for c in platform_configs()
    ]
    builtin = [
        {
            "name": "builtin",
            "label": "Built-in writer",
            "kind": "offline",
            "models": ["huntaze-builtin-1"],
            "source": "built-in",
        }
    ]
    return own + platform + builtin


def uses_builtin_only(*, agency_id: int) -> bool:
    return len(configured_providers(agency_id=agency_id)) == 1


def provider_status(*, agency_id: int) -> list[dict]:
    """Per provider: breaker state; per model: calls, error rate and latency over the last hour."""
    from apps.ai.resilience import breaker

    since = timezone.now() - STATUS_WINDOW
    rows = list(
        AIRequestLog.objects.for_agency(agency_id)
        .filter(created_at__gte=since, cache_hit=False, coalesced=False)
        .values_list("provider", "model", "latency_ms", "error_kind")[:STATUS_SAMPLE]
    )
    stats: dict[tuple[str, str], dict] = {}
    for provider, model, latency, error in rows:
        entry = stats.setdefault((provider, model), {"calls": 0, "errors": 0, "latencies": []})
        entry["calls"] += 1
        if error and error != "CANCELLED":
            entry["errors"] += 1
        else:
            entry["latencies"].append(latency)
    result = []
    for provider in configured_providers(agency_id=agency_id):
        name = provider["name"]
        state = {"state": "closed"} if name == "builtin" else async_to_sync(breaker.state)(name)
        models = [
            {
                "model": model,
                "calls": entry["calls"],
                "error_rate": entry["errors"] / entry["calls"] if entry["calls"] else 0.0,
                "p50_ms": median(entry["latencies"]) if entry["latencies"] else None,
            }
            for (prov, model), entry in sorted(stats.items())
            if prov == name
        ]
        result.append({**provider, "breaker": state["state"], "models": models})
    return result


def usage_summary(*, agency_id: int, days: int = 30) -> dict:
    since = timezone.now() - timedelta(days=days)
    totals = (
        AIRequestLog.objects.for_agency(agency_id)
        .filter(created_at__gte=since)
        .aggregate(
            calls=Count("id"),
            cost=Sum("cost_usd"),
            degraded=Count("id", filter=Q(degraded=True)),
            cache_hits=Count("id", filter=Q(cache_hit=True)),
        )
    )
    return {
        "calls": totals["calls"],
        "cost": totals["cost"] or Decimal(0),
        "degraded": totals["degraded"],
        "cache_hits": totals["cache_hits"],
        "days": days,
        "builtin_only": uses_builtin_only(agency_id=agency_id),
        "timeout_s": settings.AI_TIMEOUT_SECONDS,
    }
