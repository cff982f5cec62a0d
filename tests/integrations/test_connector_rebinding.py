# ruff: noqa: F811 (pytest fixtures imported from test_connector.py and tests/fakes/resolver.py)
"""The third-party API connector connects only to the address it checked: the provider's host
name is resolved once per connection, by the connection (apps/ai/egress.py's guarded_session);
an answer the policy refuses stops the request before any connection, as a permanent error, and
a later, different answer (DNS rebinding) is never asked for."""

from __future__ import annotations

import pytest

from apps.delivery.connectors import RetryableSendError
from apps.integrations.connectors import RefusedApiURL, ThirdPartyApiConnector
from apps.integrations.models import Connection
from tests.fakes.resolver import resolver  # noqa: F401 (fixture)
from tests.integrations.test_connector import api  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
HOST = "provider.rebind.test"
PUBLIC = "93.184.216.34"  # checked, and refused by the test's guard before any packet leaves


@pytest.fixture
def provider(api, world, settings):
    settings.INTEGRATIONS_API_LOOPBACK_ONLY = False
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = False  # production
    port = api.base_url.rsplit(":", 1)[1].split("/")[0]
    return Connection.objects.create(
        agency=world.agency, creator=world.creator, platform="onlyfans", status="connected",
        api_base_url=f"https://{HOST}:{port}", api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip


def test_a_provider_name_answering_loopback_is_refused_by_the_connection(api, provider, resolver):
    resolver.answer(HOST, "127.0.0.1")
    with pytest.raises(RefusedApiURL, match="this server itself"):
        ThirdPartyApiConnector(platform="onlyfans").account_status(provider)
    assert resolver.lookups == [HOST] and api.state.requests == []


def test_the_connection_goes_to_the_checked_answer_never_a_later_one(api, provider, resolver):
    resolver.answer(HOST, PUBLIC, "127.0.0.1")
    resolver.unreachable.add(PUBLIC)
    with pytest.raises(RetryableSendError):
        ThirdPartyApiConnector(platform="onlyfans").account_status(provider)
    assert resolver.connects == [PUBLIC] and resolver.lookups == [HOST] and api.state.requests == []
