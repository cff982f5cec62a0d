"""The plan's limits as an API client meets them: 403 with code plan_limit or plan_feature and
the upgrade link; another agency's objects stay 404."""

from __future__ import annotations

import pytest

from apps.accounts.models import Creator
from tests.billing.conftest import put_on_plan
from tests.messaging.api_helpers import error, token_client

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_creating_a_creator_over_the_limit_answers_plan_limit(world):
    put_on_plan(world.agency, "creator", max_creators=2)
    response = token_client(world.owner).post("/api/v1/creators", {"display_name": "Extra"}, content_type=JSON)
    assert response.status_code == 403
    body = error(response)
    assert body["code"] == "plan_limit"
    assert body["upgrade_url"] == "/pricing/"
    assert "includes 2 creators" in body["message"]
    assert not Creator.objects.filter(display_name="Extra").exists()


def test_creating_a_creator_within_the_limit_works(world):
    put_on_plan(world.agency, "creator", max_creators=3)
    response = token_client(world.owner).post("/api/v1/creators", {"display_name": "Fits"}, content_type=JSON)
    assert response.status_code == 201


def test_inviting_over_the_seat_limit_answers_plan_limit(world):
    put_on_plan(world.agency, "creator", max_seats=4)
    response = token_client(world.owner).post(
        "/api/v1/invitations", {"email": "more@example.com", "role": "viewer"}, content_type=JSON
    )
    assert response.status_code == 403 and error(response)["code"] == "plan_limit"


def test_bad_input_is_still_a_validation_error_first(world):
    put_on_plan(world.agency, "creator", max_seats=4)
    response = token_client(world.owner).post(
        "/api/v1/invitations", {"email": "not-an-email", "role": "viewer"}, content_type=JSON
    )
    assert response.status_code == 422


def test_a_read_only_creator_cannot_be_changed_through_the_api(world):
    put_on_plan(world.agency, "creator")
    response = token_client(world.owner).patch(
        f"/api/v1/creators/{world.other_creator.pk}", {"niche": "yoga"}, content_type=JSON
    )
    assert response.status_code == 403 and error(response)["code"] == "plan_limit"
    assert token_client(world.owner).get(f"/api/v1/creators/{world.other_creator.pk}").status_code == 200


def test_another_agencys_creator_is_404_whatever_the_plan(world, other_world):
    put_on_plan(world.agency, "creator")
    response = token_client(world.owner).patch(
        f"/api/v1/creators/{other_world.creator.pk}", {"niche": "yoga"}, content_type=JSON
    )
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/campaigns", "/api/v1/automations", "/api/v1/optimization/recommendations"])
def test_api_of_a_feature_missing_from_the_plan_answers_plan_feature(world, path):
    put_on_plan(world.agency, "creator", feature_campaigns=False)  # the Creator plan has no optimization
    response = token_client(world.owner).get(path)
    assert response.status_code == 403
    body = error(response)
    assert body["code"] == "plan_feature" and body["upgrade_url"] == "/pricing/"


def test_the_session_api_is_gated_too(world, client_for):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    response = client_for(world.owner).get("/api/v1/campaigns")
    assert response.status_code == 403 and error(response)["code"] == "plan_feature"


def test_other_api_routes_are_not_gated(world):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    assert token_client(world.owner).get("/api/v1/creators").status_code == 200
