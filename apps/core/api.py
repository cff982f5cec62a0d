"""API: ``/health``, the one operation that needs no login (the caller's identity is accounts' ``/me``)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema, Status

from apps.core.health import run_checks

router = Router()


class CheckOut(Schema):
    ok: bool
    latency_ms: float
    backend: str
    required: bool
    error: str | None = None


class HealthOut(Schema):
    status: str
    checks: dict[str, CheckOut]


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, tags=["health"])
def health(request: HttpRequest):
    """Database, cache, channel layer and broker, each with its round-trip latency."""
    results = run_checks()
    healthy = all(r.ok for r in results if r.required)
    body = {
        "status": "ok" if healthy else "down",
        "checks": {
            r.name: {
                "ok": r.ok,
                "latency_ms": r.latency_ms,
                "backend": r.backend,
                "required": r.required,
                "error": r.error,
            }
            for r in results
        },
    }
    return Status(200 if healthy else 503, body)
