"""GET /api/v1/health: a real round trip to each service, 503 when one is down."""

from __future__ import annotations

import pytest
from django.test import Client

from huntaze.celery import app as celery_app


def test_health_reports_every_service_green(db):
    response = Client().get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "channel_layer", "broker"}
    for check in body["checks"].values():
        assert check["ok"] is True and check["latency_ms"] >= 0 and check["backend"]


def test_health_is_503_when_the_broker_is_unreachable(db):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = Client().get("/api/v1/health")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_health_is_503_when_the_cache_is_unreachable(db, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = Client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False


@pytest.mark.parametrize("path", ["/api/v1/health"])
def test_health_needs_no_login_and_leaks_no_secrets(db, path, settings):
    body = Client().get(path).content.decode()
    assert settings.SECRET_KEY not in body


def test_broker_check_finds_the_project_celery_app_from_any_thread(db):
    """core reaches the app through celery.current_app; daphne runs sync views in other threads,
    where a thread-local current app would fall back to Celery's unconfigured default."""
    from concurrent.futures import ThreadPoolExecutor

    from celery import current_app

    from apps.core.health import check_broker

    with ThreadPoolExecutor(1) as pool:
        app, result = pool.submit(lambda: (current_app._get_current_object(), check_broker())).result()
    assert app is celery_app
    assert result.ok, result.error
