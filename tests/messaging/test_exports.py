"""Fan CSV export: the documented columns, formula-safe cells, only the member's visible fans, the
current filters or segment; owners and managers only."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from apps.messaging.exports import FAN_COLUMNS
from tests.conftest import login_client
from tests.messaging.factories import FanFactory, FanTagFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def rows(response) -> tuple[list[str], list[dict]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="fans-')
    text = b"".join(response.streaming_content).decode()
    reader = csv.DictReader(io.StringIO(text))
    return reader.fieldnames, list(reader)


def test_columns_and_values(world):
    fan = FanFactory(creator=world.creator, username="mike", display_name="Mike", platform_fan_id="u1")
    fan.spent_tips, fan.spent_ppv, fan.total_spent = Decimal("400"), Decimal("150"), Decimal("550")
    fan.ppv_offered, fan.ppv_bought = 3, 2
    fan.save()
    FanTagFactory(fan=fan, name="vip")
    FanTagFactory(fan=fan, name="gym")
    header, data = rows(login_client(world.owner).get("/fans/export.csv"))
    assert tuple(header) == FAN_COLUMNS
    assert data[0]["username"] == "mike" and data[0]["platform_fan_id"] == "u1"
    assert (data[0]["tier"], data[0]["lifecycle"]) == ("whale", "active")
    assert (data[0]["total_spent"], data[0]["spent_tips"], data[0]["spent_ppv"]) == ("550.00", "400.00", "150.00")
    assert data[0]["tags"] == "gym;vip"
    assert data[0]["creator"] == world.creator.display_name


@pytest.mark.parametrize("name", ["=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@SUM(A1)", "\t=1"])
def test_formula_cells_are_neutralised(world, name):
    FanFactory(creator=world.creator, display_name=name, username="plain")
    _, data = rows(login_client(world.owner).get("/fans/export.csv"))
    assert data[0]["display_name"] == "'" + name
    assert data[0]["username"] == "plain"


def test_only_visible_fans_and_current_filters(world, other_world):
    big = FanFactory(creator=world.creator, username="big")
    big.spent_tips = big.total_spent = Decimal("900")
    big.save()
    FanFactory(creator=world.creator, username="small")
    FanFactory(creator=world.other_creator, username="nova_fan")
    FanFactory(creator=other_world.creator, username="their_fan")
    client = login_client(world.manager)
    _, data = rows(client.get("/fans/export.csv"))
    assert {row["username"] for row in data} == {"big", "small", "nova_fan"}
    _, data = rows(client.get("/fans/export.csv?tiers=whale"))
    assert [row["username"] for row in data] == ["big"]
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["free"]}, creator=world.creator)
    _, data = rows(client.get(f"/fans/export.csv?segment={segment.pk}"))
    assert [row["username"] for row in data] == ["small"]
    _, data = rows(login_client(other_world.owner).get("/fans/export.csv"))
    assert [row["username"] for row in data] == ["their_fan"]


def test_invalid_filters_redirect_with_the_message(world):
    response = login_client(world.owner).get("/fans/export.csv?spent_min=lots")
    assert response.status_code == 302 and response["Location"].startswith("/fans/?")


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatters_and_viewers_cannot_export(world, role):
    FanFactory(creator=world.creator)
    assert login_client(world.member(role)).get("/fans/export.csv").status_code == 403


def test_export_streams_many_fans_in_a_few_queries(world, django_assert_max_num_queries):
    FanFactory.create_batch(120, creator=world.creator)
    client = login_client(world.owner)
    with django_assert_max_num_queries(12):
        response = client.get("/fans/export.csv")
        _, data = rows(response)
    assert len(data) == 120
