"""The Django admin: every model is registered, lists load with search and filters, tenants show."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.accounts.factories import PASSWORD, UserFactory

OWN_APPS = {config.label for config in apps.get_app_configs() if config.name.startswith("apps.")}


def own_models():
    return [model for model in apps.get_models() if model._meta.app_label in OWN_APPS]


def test_every_model_is_registered():
    missing = [model.__name__ for model in own_models() if model not in admin.site._registry]
    assert not missing


@pytest.fixture
def staff_client(world):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_every_changelist_loads_with_search(staff_client, world):
    for model in own_models():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url
        model_admin = admin.site._registry[model]
        if model_admin.search_fields:
            assert staff_client.get(url, {"q": "Velvet"}).status_code == 200, url
        if "agency" in [f.name for f in model._meta.fields]:
            assert "agency" in model_admin.list_display, f"{model.__name__} must show its tenant"


def test_api_token_admin_never_shows_the_hash(staff_client, world):
    from apps.accounts import services

    token, secret = services.api_token_create(membership=world.owner, name="Admin check")
    page = staff_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()
    assert token.token_hash not in page and secret not in page and "Admin check" in page


def test_members_are_not_admins(world, client_for):
    response = client_for(world.owner).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_signs_in_through_the_product_login(db, client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response["Location"] == "/accounts/login/?next=/admin/accounts/user/"
    # The admin's own form would take a password alone, bypassing the second factor: it is gone.
    response = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == "/accounts/login/?next=/admin/"


@pytest.mark.parametrize("target", ["foo", "admin:index", "//evil.example/"])
def test_a_next_that_is_not_a_path_on_this_site_sends_staff_to_the_admin_index(db, target):
    # redirect() takes a bare word for a view name: "foo" was a 500 for a signed-in staff member.
    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/admin/login/", {"next": target})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_admin_login_sends_staff_on_and_refuses_members(world, client_for):
    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/admin/login/?next=/admin/accounts/")["Location"] == "/admin/accounts/"
    assert client_for(world.owner).get("/admin/login/").status_code == 403


def test_workflow_definitions_page_lists_steps_and_runs_by_state(staff_client, world, django_assert_max_num_queries):
    from apps.workflows import engine, services
    from apps.workflows.models import WorkflowRun

    engine.drive(services.run_start(membership=world.owner, workflow="nightly_optimization").pk)
    changelist = staff_client.get(reverse("admin:workflows_workflowrun_changelist")).content.decode()
    assert reverse("admin:workflows_definitions") in changelist
    with django_assert_max_num_queries(6):  # session, user, and one aggregate of the runs
        page = staff_client.get(reverse("admin:workflows_definitions")).content.decode()
    assert 'id="workflow-weekly_content_plan"' in page and "once per item" in page  # the fan-out steps
    assert "no: a lost worker leaves it for a person" in page  # the notify steps are not idempotent
    assert WorkflowRun.objects.get().state == "succeeded"
    assert "?workflow=nightly_optimization&amp;state=succeeded" in page and "Succeeded: 1" in page


def test_workflow_definitions_page_is_for_staff_only(world, client_for):
    response = client_for(world.owner).get(reverse("admin:workflows_definitions"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_workflow_definitions_page_needs_the_permission_to_view_runs(world):
    from django.contrib.auth.models import Permission

    staff = UserFactory(is_staff=True)  # staff, but not allowed to see workflow runs
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("admin:workflows_definitions")).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_workflowrun"))
    assert client.get(reverse("admin:workflows_definitions")).status_code == 200
