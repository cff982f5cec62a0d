"""Fixtures for the AI gateway: the loopback fake provider server and gateway settings."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from apps.ai.registry import registry

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"


def _clear_shared_redis_keys() -> None:
    if not django_settings.REDIS_URL:
        from apps.core.shared import LocalSharedState, shared_state

        state = shared_state()
        if isinstance(state, LocalSharedState):
            with state._transaction() as connection:
                connection.execute("DELETE FROM shared")
        return
    import redis

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    prefix = django_settings.REDIS_KEY_PREFIX
    for pattern in (f"{prefix}:shared:*", f"{prefix}:1:ai:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _fresh_ai_state():
    """Breakers, rate-limit windows and cached answers must not leak between tests."""
    from django.core.cache import cache

    from apps.ai import resilience, router
    from apps.ai.ledger import ledger

    ledger.discard()
    _clear_shared_redis_keys()
    if not django_settings.REDIS_URL:
        cache.clear()  # local memory: only this process's own cache
    resilience.breaker.forget()
    registry.reset()
    router.forget_latencies()
    yield
    ledger.discard()
    registry.reset()


@pytest.fixture
def ai(settings, fake_llm):
    """The gateway pointed at the fake server: OpenAI first, Anthropic second, built-in last."""
    fake_llm.reset()
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    settings.ANTHROPIC_API_KEY = ANTHROPIC_KEY
    settings.ANTHROPIC_BASE_URL = fake_llm.anthropic_base_url
    settings.ANTHROPIC_MODELS = ["claude-haiku-4-5"]
    settings.AZURE_OPENAI_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    settings.DEFAULT_AI_PROVIDER = ""
    settings.AI_ROUTING = "priority"
    settings.AI_TIMEOUT_SECONDS = 2.0
    # The fake listens on loopback: agencies' own connections may point there in these tests, in
    # both modes (tests/ai/test_credential_egress.py checks the refusal with it off).
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    settings.AI_MAX_ATTEMPTS = 3
    settings.AI_BREAKER = {
        "consecutive_failures": 3,
        "failure_rate": 0.5,
        "min_calls": 20,
        "window_seconds": 3600,  # an hour: no bucket boundary falls inside a test
        "cooldown_seconds": 0.6,
        "half_open_probes": 1,
    }
    registry.reset()
    return fake_llm
