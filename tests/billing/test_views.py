"""Billing pages and the plan's limits as a member meets them on pages: /billing/ (owners
only), /pricing/, the creator and invitation forms over a limit, "not in your plan" pages."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Creator, Invitation
from apps.ai.models import AIRequestLog
from tests.accounts.test_views import VALID_CREATOR
from tests.billing.conftest import put_on_plan
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


def test_the_owner_sees_plan_status_trial_and_usage(world):
    AIRequestLog.objects.create(agency=world.agency, feature="studio.caption", cost_usd=Decimal("1.234"),
                                created_at=timezone.now())  # fmt: skip
    page = login_client(world.owner).get(reverse("billing:overview"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Agency plan" in body and "Trial" in body and "days left" in body
    assert "2 of 10" in body  # creators
    assert "4 of 15" in body  # seats: four members
    assert "124</strong> AI credits used of 20,000" in body  # $1.234 → 124 credits (rounded up)
    assert "by the end of the month" in body
    assert "<progress" in body


@pytest.mark.parametrize("role", ["manager", "chatter", "viewer"])
def test_only_owners_see_the_billing_page(world, role):
    assert login_client(world.member(role)).get(reverse("billing:overview")).status_code == 403


def test_the_billing_page_needs_a_login(db):
    response = Client().get(reverse("billing:overview"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_the_billing_page_shows_only_the_members_own_agency(world, other_world):
    put_on_plan(other_world.agency, "enterprise")
    body = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert "Agency plan" in body and "Enterprise plan" not in body


def test_pricing_compares_plans_and_marks_the_current_one(world):
    put_on_plan(world.agency, "creator")
    body = login_client(world.viewer).get(reverse("billing:pricing")).content.decode()
    for name in ("Creator", "Agency", "Enterprise"):
        assert name in body
    assert body.index("Current plan") < body.index(">Agency<")  # marked on the Creator column
    anonymous = Client().get(reverse("billing:pricing"))
    assert anonymous.status_code == 200 and b"Current plan" not in anonymous.content


def test_adding_a_creator_over_the_limit_shows_a_form_error_with_the_pricing_link(world):
    put_on_plan(world.agency, "creator", max_creators=2)
    response = login_client(world.owner).post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Your Creator (test) plan includes 2 creators and you use 2." in body
    assert '<a href="/pricing/">See plans</a>' in body
    assert not Creator.objects.filter(display_name="Ivy Lane").exists()


def test_inviting_over_the_seat_limit_shows_a_form_error(world):
    put_on_plan(world.agency, "creator", max_seats=4)
    response = login_client(world.owner).post(reverse("accounts:member-list"), {"email": "new@example.com",
                                                                                "role": "viewer"})  # fmt: skip
    assert response.status_code == 200
    assert "includes 4 seats" in response.content.decode()
    assert not Invitation.objects.filter(agency=world.agency).exists()


def test_editing_a_read_only_creator_after_a_downgrade_shows_why(world):
    put_on_plan(world.agency, "creator")
    response = login_client(world.owner).post(
        reverse("accounts:creator-edit", args=[world.other_creator.pk]), {**VALID_CREATOR, "display_name": "Renamed"}
    )
    assert response.status_code == 200
    assert "This creator is read-only" in response.content.decode()
    world.other_creator.refresh_from_db()
    assert world.other_creator.display_name == "Velvet Nova"  # kept, not changed, not deleted


@pytest.mark.parametrize("url", ["/campaigns/", "/campaigns/new/", "/optimization/"])
def test_pages_of_a_feature_missing_from_the_plan_say_so_with_an_upgrade_link(world, url):
    put_on_plan(world.agency, "creator", feature_campaigns=False, feature_optimization=False)
    response = login_client(world.owner).get(url)
    assert response.status_code == 403
    body = response.content.decode()
    assert "Not in your plan" in body and "is not in your Creator (test) plan" in body
    assert 'href="/pricing/"' in body


def test_pages_of_a_feature_in_the_plan_open(world):
    put_on_plan(world.agency, "agency")
    assert login_client(world.owner).get("/campaigns/").status_code == 200


def _past_due(world, *, grace_days: float) -> None:
    from datetime import timedelta

    from apps.billing import entitlements
    from apps.billing.models import Subscription

    now = timezone.now()
    Subscription.objects.filter(agency=world.agency).update(
        status="past_due", past_due_since=now, grace_ends_at=now + timedelta(days=grace_days)
    )
    entitlements.invalidate(world.agency.pk)


def test_a_past_due_agency_reads_the_warning_once_on_the_billing_page_and_in_the_banner_elsewhere(world):
    _past_due(world, grace_days=3)
    client = login_client(world.owner)
    billing = client.get(reverse("billing:overview")).content.decode()
    assert billing.count("Your last payment failed") == 1
    assert 'id="billing-banner"' not in billing and 'id="billing-notice"' in billing
    for url in ("/", reverse("billing:pricing"), reverse("accounts:creator-list")):
        page = client.get(url).content.decode()
        assert page.count("Your last payment failed") == 1 and 'id="billing-banner"' in page, url


@pytest.mark.parametrize(
    ("status", "field", "words"),
    [("trialing", "trial_ends_at", "trial has ended"), ("canceled", None, "subscription is canceled")],
)
def test_a_read_only_agency_is_told_once_on_the_billing_page(world, status, field, words):
    from datetime import timedelta

    from apps.billing import entitlements
    from apps.billing.models import Subscription

    changes = {"status": status, **({field: timezone.now() - timedelta(hours=1)} if field else {})}
    Subscription.objects.filter(agency=world.agency).update(**changes)
    entitlements.invalidate(world.agency.pk)
    body = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert body.count(words) == 1 and 'id="billing-banner"' not in body


def test_the_page_and_the_api_show_the_same_usage_from_one_selector(world):
    from apps.billing.selectors import usage_list
    from tests.messaging.api_helpers import token_client

    AIRequestLog.objects.create(agency=world.agency, feature="studio.caption", cost_usd=Decimal("0.5"),
                                created_at=timezone.now())  # fmt: skip
    rows = usage_list(agency_id=world.agency.pk)
    assert [(row.name, row.used, row.limit) for row in rows] == [
        ("creators", 2, 10),
        ("seats", 4, 15),
        ("ai_credits", 50, 20000),
    ]
    api = token_client(world.viewer).get("/api/v1/billing").json()["usage"]
    assert api == [{"name": row.name, "used": row.used, "limit": row.limit} for row in rows]
    page = login_client(world.owner).get(reverse("billing:overview")).content.decode()
    assert "2 of 10" in page and "4 of 15" in page and "50</strong> AI credits used of 20,000" in page
