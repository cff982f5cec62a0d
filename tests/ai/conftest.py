"""Fixtures for the AI gateway: the loopback fake provider server and gateway settings."""

from __future__ import annotations

import pytest

from apps.ai.registry import registry

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"


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
