from __future__ import annotations

import pytest

from apps.campaigns.services import CampaignInput, campaign_create
from tests.messaging.factories import FanFactory


def campaign_input(world, **overrides) -> CampaignInput:
    """A valid campaign of the world's first creator to ``fans`` (or the given audience)."""
    values = {"creator": world.creator, "name": "Friday drop", "text": "Hey {fan.first_name|babe}, new set tonight!"}
    values.update(overrides)
    return CampaignInput(**values)


def make_campaign(world, membership=None, **overrides):
    return campaign_create(membership=membership or world.owner, data=campaign_input(world, **overrides))


@pytest.fixture
def fans(world):
    """Five fans of the world's first creator, on OnlyFans."""
    return [FanFactory(creator=world.creator, display_name=f"Fan{index} Last") for index in range(5)]
