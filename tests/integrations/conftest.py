from __future__ import annotations

import pytest

from tests.fakes.platforms import FakePlatforms


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
