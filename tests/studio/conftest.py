"""Fixtures for the studio's generation tests: the loopback OpenAI fake (tests/fakes/llm_server.py)
as the platform's provider; an API client."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts import services as account_services
from apps.ai.ledger import ledger
from apps.ai.registry import registry
from tests.conftest import NO_REMOTE_AI as BUILTIN_ONLY

# ``builtin`` (the built-in writer only) is tests/conftest.py's; ``remote`` here keeps the
# gateway's own rate limits, which some studio tests are about.


@pytest.fixture
def api(world):
    _, secret = account_services.api_token_create(membership=world.manager, name="studio")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def remote(settings, fake_llm):
    fake_llm.reset()
    for key, value in BUILTIN_ONLY.items():
        setattr(settings, key, value)
    settings.OPENAI_API_KEY = "sk-test-studio-0123456789"
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    settings.AI_MAX_ATTEMPTS = 1
    registry.reset()
    ledger.discard()
    yield fake_llm
    ledger.discard()
    registry.reset()
