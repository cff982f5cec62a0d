"""Plans, subscriptions and the entitlements service: a new agency's trial, creator and seat
limits in the services, downgrades that keep everything, the cache dropped on plan change."""

from __future__ import annotations

import pytest

from apps.accounts import services as account_services
from apps.accounts.models import Creator
from apps.billing import entitlements
from apps.billing.entitlements import PlanFeatureError, PlanLimitError
from apps.billing.models import Subscription, SubscriptionChange
from apps.billing.services import subscription_assign
from apps.core.errors import ApplicationError
from tests.accounts.factories import CreatorFactory
from tests.billing.conftest import put_on_plan

pytestmark = pytest.mark.django_db

CREATOR = {"display_name": "New Star", "ppv_price_min": "5.00", "ppv_price_max": "30.00"}


def test_a_new_agency_starts_a_trial_of_the_agency_plan():
    membership = account_services.user_signup(
        email="new@example.com", password="a-long-password-1", full_name="New Owner", agency_name="Fresh"
    )
    subscription = Subscription.objects.get(agency=membership.agency)
    assert (subscription.plan.code, subscription.status) == ("agency", "trialing")
    assert (subscription.trial_ends_at - subscription.created_at).days in (13, 14)
    change = SubscriptionChange.objects.get(agency=membership.agency)
    assert change.to_plan.code == "agency" and change.from_plan is None


def test_the_plans_catalogue_has_the_three_plans(catalogue):
    assert [catalogue[code].name for code in ("creator", "agency", "enterprise")] == ["Creator", "Agency", "Enterprise"]
    assert catalogue["creator"].max_creators == 1
    assert catalogue["enterprise"].max_creators is None


def test_adding_a_creator_over_the_limit_is_refused_with_an_upgrade_path(world):
    put_on_plan(world.agency, "creator", max_creators=3)
    account_services.creator_create(membership=world.owner, data=CREATOR)  # 3 of 3
    with pytest.raises(PlanLimitError) as caught:
        account_services.creator_create(membership=world.owner, data={**CREATOR, "display_name": "One too many"})
    assert caught.value.code == "plan_limit"
    assert "includes 3 creators" in caught.value.message
    assert caught.value.extra["upgrade_url"] == "/pricing/"
    assert Creator.objects.filter(agency=world.agency).count() == 3


def test_archived_creators_do_not_count_but_restoring_one_does(world):
    put_on_plan(world.agency, "creator", max_creators=2)
    account_services.creator_set_archived(membership=world.owner, creator=world.other_creator, archived=True)
    account_services.creator_create(membership=world.owner, data=CREATOR)
    with pytest.raises(PlanLimitError):
        account_services.creator_set_archived(membership=world.owner, creator=world.other_creator, archived=False)


def test_inviting_over_the_seat_limit_is_refused(world):
    # The world has four members; a pending invitation takes a seat too.
    put_on_plan(world.agency, "creator", max_seats=5)
    account_services.invitation_create(by=world.owner, email="fifth@example.com", role="viewer")
    with pytest.raises(PlanLimitError) as caught:
        account_services.invitation_create(by=world.owner, email="sixth@example.com", role="viewer")
    assert "includes 5 seats and you use 5" in caught.value.message


def test_accepting_an_invitation_after_a_downgrade_took_the_seat_is_refused(world):
    invitation = account_services.invitation_create(by=world.owner, email="late@example.com", role="viewer")
    put_on_plan(world.agency, "creator", max_seats=4)
    with pytest.raises(PlanLimitError):
        account_services.invitation_accept_with_signup(invitation=invitation, password="a-long-password-1",
                                                       full_name="Late")  # fmt: skip


def test_a_downgrade_keeps_every_creator_and_makes_the_extra_ones_read_only(world):
    later = [CreatorFactory(agency=world.agency, display_name=f"Later {index}") for index in range(3)]
    put_on_plan(world.agency, "creator")  # one creator
    assert Creator.objects.filter(agency=world.agency).count() == 5  # nothing deleted
    found = entitlements.entitlements_for(world.agency.pk)
    assert not found.creator_is_readonly(world.creator.pk)  # the first added stays writable
    assert found.readonly_creator_ids == {world.other_creator.pk, *(creator.pk for creator in later)}
    with pytest.raises(PlanLimitError, match="read-only"):
        account_services.creator_update(membership=world.owner, creator=later[0], data={"niche": "yoga"})
    account_services.creator_update(membership=world.owner, creator=world.creator, data={"niche": "yoga"})
    # Archiving the writable creator frees its place for the next one.
    account_services.creator_set_archived(membership=world.owner, creator=world.creator, archived=True)
    account_services.creator_update(membership=world.owner, creator=world.other_creator, data={"niche": "yoga"})


def test_the_snapshot_is_cached_and_dropped_on_plan_change(world, django_assert_num_queries,
                                                           django_capture_on_commit_callbacks):  # fmt: skip
    put_on_plan(world.agency, "agency")
    assert entitlements.entitlements_for(world.agency.pk).plan_code == "agency"
    with django_assert_num_queries(0):
        assert entitlements.entitlements_for(world.agency.pk).allows("optimization")
    with django_capture_on_commit_callbacks(execute=True):
        put_on_plan(world.agency, "creator")
    found = entitlements.entitlements_for(world.agency.pk)
    assert (found.plan_code, found.allows("optimization")) == ("creator", False)


def test_a_plan_edited_in_place_reaches_its_agencies(world, catalogue):
    put_on_plan(world.agency, "creator")
    assert entitlements.entitlements_for(world.agency.pk).limit("creators") == 1
    plan = catalogue["creator"]
    plan.max_creators = 4
    plan.save()
    assert entitlements.entitlements_for(world.agency.pk).limit("creators") == 4


def test_features_missing_from_the_plan_are_refused(world):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    with pytest.raises(PlanFeatureError) as caught:
        entitlements.require_feature(world.agency.pk, "campaigns")
    assert caught.value.code == "plan_feature"
    entitlements.require_feature(world.agency.pk, "inbox")


def test_the_per_request_memo_reads_the_cache_once(world):
    put_on_plan(world.agency, "agency")
    token = entitlements.memo_open()
    try:
        first = entitlements.entitlements_for(world.agency.pk)
        from django.core.cache import cache

        cache.clear()
        assert entitlements.entitlements_for(world.agency.pk) is first
    finally:
        entitlements.memo_close(token)


def test_assigning_an_unknown_status_is_refused(world, catalogue):
    with pytest.raises(ApplicationError, match="not a subscription status"):
        subscription_assign(agency=world.agency, plan=catalogue["agency"], status="free", by=None)
    assert Subscription.objects.get(agency=world.agency).plan.code == "agency"  # unchanged: the trial
