"""Automation pages as a member uses them: the overview of every creator's automations, setting
one up (errors keep what was typed and land on the step), switching it on and off, its runs with
why each stopped, read-only for chatters, 404 for another agency, a constant query count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.campaigns.automations import StepInput, automation_save, automations_tick
from apps.campaigns.models import Automation, AutomationRun
from tests.accounts.factories import CreatorFactory
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


def url(world, kind="welcome", creator=None):
    return reverse("campaigns:automation", args=[(creator or world.creator).pk, kind])


def form(**overrides):
    data = {"enabled": "on", "step1_delay": "5", "step1_text": "Welcome {fan.first_name|babe} <3"}
    for number in (1, 2, 3):
        for name in ("delay", "text", "price", "media"):
            data.setdefault(f"step{number}_{name}", "")
    data.update(overrides)
    return data


def test_the_overview_lists_each_creators_four_automations_off_until_set_up(world, client_for):
    response = client_for(world.owner).get(reverse("campaigns:automations"))
    assert response.status_code == 200
    page = response.content.decode()
    for label in ("Welcome a new subscriber", "Renewal switched off", "Win back an expired subscriber",
                  "Follow up an unbought PPV"):  # fmt: skip
        assert label in page
    assert page.count(">Off<") == 4 * 2  # the world has two creators
    assert "never switched on" in page


def test_switching_on_a_welcome_saves_it_and_it_welcomes_a_new_fan(world, client_for):
    response = client_for(world.owner).post(url(world), form())
    assert response.status_code == 302
    automation = Automation.objects.get()
    assert automation.enabled and automation.steps[0]["text"] == "Welcome {fan.first_name|babe} <3"
    FanFactory(creator=world.creator, subscribed_since=timezone.now(), username="nina")
    automations_tick(now=timezone.now() + timezone.timedelta(minutes=6))
    page = client_for(world.owner).get(url(world)).content.decode()
    assert "nina" in page and "All steps sent" in page
    overview = client_for(world.owner).get(reverse("campaigns:automations")).content.decode()
    assert ">On<" in overview and "1 done" in overview


def test_a_bad_step_is_a_form_error_on_that_step_and_keeps_what_was_typed(world, client_for):
    data = form(step2_delay="60", step2_text="Half price {fan.age}")
    response = client_for(world.owner).post(url(world), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Message 2: Unknown variable" in page
    assert "Half price {fan.age}" in page  # what was typed is still there
    assert not Automation.objects.exists()


def test_fan_text_is_escaped_on_the_page(world, client_for):
    client_for(world.owner).post(url(world), form(step1_text="Hi <script>alert(1)</script>"))
    page = client_for(world.owner).get(url(world)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_a_chatter_reads_but_cannot_change_it(world, client_for):
    response = client_for(world.chatter).get(url(world))
    assert response.status_code == 200 and "Only owners and managers change automations." in response.content.decode()
    response = client_for(world.chatter).post(url(world), form())
    assert response.status_code == 400
    assert not Automation.objects.exists()


def test_another_agencys_creator_and_an_unknown_kind_are_404(world, other_world, client_for):
    assert client_for(world.owner).get(url(world, creator=other_world.creator)).status_code == 404
    assert client_for(world.owner).post(url(world, creator=other_world.creator), form()).status_code == 404
    assert client_for(world.owner).get(url(world, kind="birthday")).status_code == 404
    assert not Automation.objects.exists()


def test_switching_off_shows_why_runs_stopped(world, client_for):
    automation_save(
        membership=world.owner, creator=world.creator, kind="welcome", enabled=True,
        steps=[StepInput(delay_minutes=60, text="Hi")],
    )  # fmt: skip
    FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()
    client_for(world.owner).post(url(world), form(enabled="", step1_delay="60", step1_text="Hi"))
    assert AutomationRun.objects.get().status == "stopped"
    assert "The automation was switched off." in client_for(world.owner).get(url(world)).content.decode()


def test_pages_keep_a_constant_query_count(world, client_for):
    client = client_for(world.owner)
    client.post(url(world), form())
    FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()  # one run, one creator's automation
    client.get(reverse("campaigns:automations"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("campaigns:automations"))
        client.get(url(world))
    for _ in range(3):
        creator = CreatorFactory(agency=world.agency)
        automation_save(
            membership=world.owner, creator=creator, kind="expired", enabled=True,
            steps=[StepInput(delay_minutes=0, text="Miss you")],
        )  # fmt: skip
    for _ in range(30):
        FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()
    client = client_for(world.owner)
    client.get(reverse("campaigns:automations"))
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("campaigns:automations"))
        client.get(url(world))
    assert len(many) == len(few), "\n".join(q["sql"][:150] for q in many.captured_queries)
