"""The agency's entitlements version and each web process's copy of the snapshot
(apps/billing/entitlements.py, snapshot_prime): a plan change is seen on the very next page, in
this process and in any other (the version is read from the database with the membership); a
rolled-back change raises nothing; a page served from the copy reads neither the shared cache nor
the subscription."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Agency
from apps.billing.models import Plan, Subscription
from tests.billing.conftest import put_on_plan
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


def _version(agency) -> int:
    return Agency.objects.values_list("entitlements_version", flat=True).get(pk=agency.pk)


def test_a_plan_change_through_the_service_is_seen_on_the_very_next_page(world, django_capture_on_commit_callbacks):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    client = login_client(world.owner)
    assert client.get("/campaigns/").status_code == 403  # the copy is warm with the old plan
    assert client.get("/campaigns/").status_code == 403
    before = _version(world.agency)

    with django_capture_on_commit_callbacks(execute=True):
        put_on_plan(world.agency, "agency")

    assert _version(world.agency) > before
    assert client.get("/campaigns/").status_code == 200


def test_another_process_change_is_seen_through_the_version_alone(world):
    """Another process changed the plan and raised the version; nothing of this process was told
    (its copy and the shared entry still hold the old plan, read at the old version)."""
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    client = login_client(world.owner)
    assert client.get("/campaigns/").status_code == 403
    assert cache.get(f"billing:entitlements:{world.agency.pk}")["plan_code"] != "agency"

    Subscription.objects.filter(agency=world.agency).update(plan=Plan.objects.get(code="agency"))
    Agency.objects.filter(pk=world.agency.pk).update(entitlements_version=F("entitlements_version") + 1)

    assert client.get("/campaigns/").status_code == 200
    assert cache.get(f"billing:entitlements:{world.agency.pk}")["plan_code"] == "agency"


def test_without_a_version_change_a_page_keeps_the_copy_it_has(world):
    """The counterpart of the test above: the same database change with no version raised is not
    seen yet (it is once the copy is SNAPSHOT_TTL old), so the version is what made the difference."""
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    client = login_client(world.owner)
    assert client.get("/campaigns/").status_code == 403

    Subscription.objects.filter(agency=world.agency).update(plan=Plan.objects.get(code="agency"))

    assert client.get("/campaigns/").status_code == 403


def test_the_version_is_raised_only_after_commit(world, django_capture_on_commit_callbacks):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    before = _version(world.agency)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        put_on_plan(world.agency, "agency")
        assert _version(world.agency) == before  # not inside the writer's transaction
    assert len(callbacks) >= 1
    assert _version(world.agency) > before


def test_a_rolled_back_plan_change_leaves_the_version_and_the_plan(world, django_capture_on_commit_callbacks):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    client = login_client(world.owner)
    assert client.get("/campaigns/").status_code == 403
    before = _version(world.agency)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        put_on_plan(world.agency, "agency")
        raise RuntimeError("payment provider said no")

    assert _version(world.agency) == before
    assert client.get("/campaigns/").status_code == 403


def test_a_warm_page_reads_neither_the_shared_cache_nor_the_subscription(world):
    put_on_plan(world.agency, "creator", feature_campaigns=False)
    client = login_client(world.owner)
    assert client.get("/campaigns/").status_code == 403
    with CaptureQueriesContext(connection) as first:
        assert client.get("/campaigns/").status_code == 403
    key = f"billing:entitlements:{world.agency.pk}"
    cache.delete(key)  # evicted: a page that went to the shared cache would reload and refill it

    with CaptureQueriesContext(connection) as warm:
        assert client.get("/campaigns/").status_code == 403

    assert cache.get(key) is None
    assert not [query for query in warm.captured_queries if "billing_subscription" in query["sql"]]
    assert len(warm.captured_queries) == len(first.captured_queries)


def test_a_creator_change_raises_the_version_once_committed(world, django_capture_on_commit_callbacks):
    """Which creators are read-only depends on the active ones: other processes must drop their copy."""
    before = _version(world.agency)
    with django_capture_on_commit_callbacks(execute=True):
        world.other_creator.is_archived = True
        world.other_creator.save()
    assert _version(world.agency) > before
