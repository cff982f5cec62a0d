from __future__ import annotations

import pytest

from tests.fakes.crm_server import FakeCRM
from tests.fakes.platforms import FakeCreatorApi, FakePlatforms


@pytest.fixture(scope="session")
def api_server():
    """The third-party creator API (OnlyFans/Fansly through a provider), one per test session."""
    server = FakeCreatorApi().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def crm_server():
    """The CRM's webhook receiver, one per test session (tests reset it)."""
    server = FakeCRM().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def platforms_server():
    server = FakePlatforms().start()
    yield server
    server.stop()


@pytest.fixture
def platforms(platforms_server, settings):
    """Every OAuth provider pointed at the loopback fake, with the fake's client credentials."""
    platforms_server.reset()
    settings.SITE_URL = "http://testserver"
    settings.INTEGRATIONS_OAUTH = {
        name: {**platforms_server.settings_for(name), "scopes": scopes}
        for name, scopes in {
            "tiktok": ["user.info.basic", "video.upload", "video.publish"],
            "instagram": ["instagram_business_basic", "instagram_business_content_publish"],
            "reddit": ["identity", "submit"],
        }.items()
    }
    yield platforms_server
    platforms_server.reset()
