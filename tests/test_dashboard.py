"""The home dashboard: creators with their numbers, app cards, empty states, constant queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.accounts.factories import CreatorFactory, MembershipFactory


def test_dashboard_shows_creators_cards_and_current_creator(world, client_for):
    page = client_for(world.owner).get("/").content.decode()
    assert world.agency.name in page
    assert world.creator.display_name in page and world.other_creator.display_name in page
    assert "Chatters assigned" in page and "Team" in page and "Notifications" in page
    assert 'ws-connect="/ws/notifications/"' in page
    assert "X-CSRFToken" in page


def test_chatter_dashboard_shows_only_assigned_creators(world, client_for):
    page = client_for(world.chatter).get("/").content.decode()
    assert world.creator.display_name in page
    assert world.other_creator.display_name not in page


def test_cards_offer_only_the_actions_the_member_may_take(world, client_for, settings):
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL"):
        setattr(settings, key, "")  # the built-in writer answers, so the AI card suggests a connection
    owner = client_for(world.owner).get("/").content.decode()
    assert "Manage the team" in owner and "Connect OpenAI or Anthropic" in owner
    chatter = client_for(world.chatter).get("/").content.decode()
    assert "See the team" in chatter and "Manage the team" not in chatter
    assert "Connect OpenAI or Anthropic" not in chatter and "An owner or manager can connect" in chatter


def test_empty_states(db, client_for):
    owner = MembershipFactory(role="owner")
    page = client_for(owner).get("/").content.decode()
    assert "No creators yet" in page and "Add a creator" in page
    chatter = MembershipFactory(agency=owner.agency, role="chatter")
    assert "No creators are assigned to you yet" in client_for(chatter).get("/").content.decode()


@pytest.mark.parametrize("extra", [0, 20])
def test_dashboard_query_count_is_constant(world, client_for, django_assert_num_queries, extra):
    CreatorFactory.create_batch(extra, agency=world.agency)
    client = client_for(world.owner)
    client.get("/")
    # messaging: 3 for its cards, 3 for its creator stats; campaigns: 4 for its card; monitoring: 2
    # for the AI cost card (the month's spend and the agency's budget); optimization: 2 for its card
    # (open recommendations, recent anomalies)
    with django_assert_num_queries(26):
        assert client.get("/").status_code == 200


def test_favicon_redirects_to_the_static_icon(client):
    # Browsers ask for /favicon.ico on every page; a 404 there is a console error in every journey.
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/img/favicon.svg"
    assert (Path(settings.BASE_DIR) / "static" / "img" / "favicon.svg").is_file()
