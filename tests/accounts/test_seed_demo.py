"""seed_demo builds a usable demo agency through each app's hook, once."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import Agency, Creator, Membership, User
from apps.core.registry import demo_seeders
from apps.notifications.models import Notification


def test_seed_demo_builds_agency_users_creators_and_prints_logins(db, capsys):
    call_command("seed_demo", "--creators", "7")
    out = capsys.readouterr().out
    assert "owner@demo.huntaze.local" in out and DEMO_PASSWORD in out
    agency = Agency.objects.get()
    assert Creator.objects.filter(agency=agency).count() == 7
    assert len(set(Creator.objects.values_list("language", flat=True))) >= 4
    assert len(set(Creator.objects.values_list("timezone", flat=True))) >= 4
    assert set(Membership.objects.values_list("role", flat=True)) == {"owner", "manager", "chatter", "viewer"}
    # Demo logins work fully: inviting and adding provider keys need a verified address.
    assert not User.objects.filter(email_verified_at__isnull=True).exists()
    assert Notification.objects.filter(title__startswith="Welcome").count() == 4
    # Besides the welcomes, only the optimization demo's unusual numbers, linked to their list, and
    # what the workflows demo's finished runs reported (the month's AI cost report), linked to the run.
    urls = set(Notification.objects.exclude(title__startswith="Welcome").values_list("url", flat=True))
    assert {url for url in urls if not url.startswith("/workflows/runs/")} <= {"/optimization/anomalies/"}
    client = Client()
    response = client.post("/accounts/login/", {"username": "owner@demo.huntaze.local", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert b"Luna Vale" in client.get("/").content
    # The operator login opens the staff monitoring pages (with the default SLOs) and the admin.
    assert "operator@demo.huntaze.local" in out
    operator = Client()
    operator.post("/accounts/login/", {"username": "operator@demo.huntaze.local", "password": DEMO_PASSWORD})
    monitoring = operator.get("/monitoring/")
    assert monitoring.status_code == 200 and b"API availability" in monitoring.content
    admin = operator.get("/admin/")
    assert admin.status_code == 200 and b"SLOs" in admin.content and b"Agencies" not in admin.content
    assert not User.objects.get(email="operator@demo.huntaze.local").is_superuser  # its password is public
    assert client.get("/monitoring/").status_code == 404  # the owner is not staff


def test_seed_demo_is_idempotent_with_if_empty_and_rebuilds_with_reset(db):
    call_command("seed_demo", "--creators", "2")
    call_command("seed_demo", "--if-empty")
    assert Agency.objects.count() == 1 and Creator.objects.count() == 2
    with pytest.raises(CommandError, match="already exists"):
        call_command("seed_demo")
    call_command("seed_demo", "--reset", "--creators", "3")
    assert Agency.objects.count() == 1 and Creator.objects.count() == 3


@pytest.mark.parametrize("args", [["--creators", "0"], ["--creators", "501"], ["--fans", "-1"]])
def test_seed_demo_rejects_bad_sizes(db, args):
    with pytest.raises(CommandError):
        call_command("seed_demo", *args)


def test_demo_hooks_run_accounts_first():
    names = [module.__name__ for module in demo_seeders()]
    assert names[0] == "apps.accounts.demo" and "apps.notifications.demo" in names
