"""API: automations listed for every creator (saved or the default, off), read, saved and switched
on and off, their runs paged and filtered; validation errors naming the step's field with nothing
saved; who may read and write; another agency's creator answering 404; a list that costs the same
whatever its length."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.campaigns.automations import DEFAULT_STEPS, StepInput, automation_save
from apps.campaigns.models import Automation, AutomationRun
from tests.accounts.factories import CreatorFactory
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db

JSON = "application/json"
KINDS = ["welcome", "renewal_off", "expired", "ppv_followup"]


def url(creator, kind="welcome", suffix=""):
    return f"/api/v1/creators/{creator.pk}/automations/{kind}{suffix}"


def switch_on(world, kind="welcome", creator=None, text="Welcome {fan.first_name|babe}!"):
    delay = 30 if kind == "ppv_followup" else 5
    return automation_save(
        membership=world.owner, creator=creator or world.creator, kind=kind, enabled=True,
        steps=[StepInput(delay_minutes=delay, text=text)],
    )  # fmt: skip


def add_runs(automation, count, status="active", **fields):
    fans = [FanFactory(creator=automation.creator) for _ in range(count)]
    event_at = timezone.now() - timedelta(minutes=10)
    return [
        AutomationRun.objects.create(
            agency_id=automation.agency_id,
            automation=automation,
            fan=fan,
            trigger=f"sub-{fan.pk}",
            event_at=event_at,
            ref_at=event_at,
            status=status,
            next_at=timezone.now() + timedelta(minutes=5) if status == "active" else None,
            **fields,
        )
        for fan in fans
    ]


# --- Reading ----------------------------------------------------------------------------------------


def test_the_list_has_every_creators_four_automations_off_until_saved(world):
    automation = switch_on(world)
    add_runs(automation, 2)
    add_runs(automation, 1, status="stopped", stop_reason="The fan replied; the inbox takes over.")
    response = token_client(world.viewer).get("/api/v1/automations")
    assert response.status_code == 200, response.content
    listing = response.json()
    assert listing["count"] == 2
    by_creator = {item["creator_id"]: item for item in listing["items"]}
    assert set(by_creator) == {world.creator.pk, world.other_creator.pk}
    star = by_creator[world.creator.pk]
    assert (star["display_name"], star["is_archived"]) == ("Velvet Star", False)
    assert [item["kind"] for item in star["automations"]] == KINDS
    welcome = star["automations"][0]
    assert (welcome["id"], welcome["enabled"], welcome["label"]) == (automation.pk, True, "Welcome a new subscriber")
    assert welcome["enabled_at"] and welcome["updated_at"]
    assert welcome["runs_last_7_days"] == {"active": 2, "done": 0, "stopped": 1}
    assert welcome["steps"] == [
        {"delay_minutes": 5, "wait": "5 min", "text": "Welcome {fan.first_name|babe}!", "ppv_price": None, "media": []}
    ]
    assert welcome["summary"] == "after 5 min"
    for unsaved in star["automations"][1:] + by_creator[world.other_creator.pk]["automations"]:
        assert (unsaved["id"], unsaved["enabled"], unsaved["enabled_at"], unsaved["updated_at"]) == (
            None, False, None, None,
        )  # fmt: skip
        assert unsaved["runs_last_7_days"] == {"active": 0, "done": 0, "stopped": 0}
        assert [step["text"] for step in unsaved["steps"]] == [step["text"] for step in DEFAULT_STEPS[unsaved["kind"]]]


def test_the_list_filters_by_creator_and_shows_an_archived_one_only_when_asked(world):
    client = token_client(world.owner)
    only = client.get(f"/api/v1/automations?creator_id={world.other_creator.pk}").json()
    assert [item["creator_id"] for item in only["items"]] == [world.other_creator.pk]
    world.other_creator.is_archived = True
    world.other_creator.save()
    assert [item["creator_id"] for item in client.get("/api/v1/automations").json()["items"]] == [world.creator.pk]
    archived = client.get(f"/api/v1/automations?creator_id={world.other_creator.pk}").json()
    assert [(item["creator_id"], item["is_archived"]) for item in archived["items"]] == [(world.other_creator.pk, True)]


def test_one_automation_reads_as_the_default_until_saved(world):
    client = token_client(world.chatter)
    default = client.get(url(world.creator, "expired"))
    assert default.status_code == 200, default.content
    body = default.json()
    assert (body["id"], body["creator_id"], body["kind"], body["enabled"]) == (None, world.creator.pk, "expired", False)
    assert [step["delay_minutes"] for step in body["steps"]] == [60, 3 * 24 * 60]
    assert [step["wait"] for step in body["steps"]] == ["1 h", "3 days"]
    assert body["summary"] == "after 1 h, then 3 days"
    automation = switch_on(world, "expired")
    saved = client.get(url(world.creator, "expired")).json()
    assert (saved["id"], saved["enabled"], len(saved["steps"])) == (automation.pk, True, 1)
    assert not Automation.objects.filter(kind="welcome").exists()  # reading saves nothing


# --- Saving -----------------------------------------------------------------------------------------


def test_saving_switches_on_changes_the_messages_and_switching_off_stops_the_runs(world):
    client = token_client(world.manager)
    body = {
        "enabled": True,
        "steps": [
            {"delay_minutes": 60, "text": "Did you see it, {fan.first_name|babe}?"},
            {"delay_minutes": 1440, "text": "Half price, today only", "ppv_price": "9", "media": ["vault-7"]},
        ],
    }
    response = client.put(url(world.creator, "ppv_followup"), body, content_type=JSON)
    assert response.status_code == 200, response.content
    saved = response.json()
    automation = Automation.objects.get()
    assert (saved["id"], saved["enabled"], saved["kind"]) == (automation.pk, True, "ppv_followup")
    assert saved["steps"][1] == {
        "delay_minutes": 1440, "wait": "1 day", "text": "Half price, today only", "ppv_price": "9.00",
        "media": ["vault-7"],
    }  # fmt: skip
    assert saved["summary"] == "after 1 h, then 1 day (PPV 9.00)"
    assert automation.enabled and automation.enabled_at and automation.updated_by == world.manager.user
    assert [step["text"] for step in automation.steps] == [step["text"] for step in body["steps"]]

    (run,) = add_runs(automation, 1)
    response = client.put(url(world.creator, "ppv_followup"), {"enabled": False}, content_type=JSON)
    assert response.status_code == 200, response.content
    assert (response.json()["enabled"], len(response.json()["steps"])) == (False, 2)  # the messages stay
    run.refresh_from_db()
    assert (run.status, run.stop_reason) == ("stopped", "The automation was switched off.")
    assert response.json()["runs_last_7_days"] == {"active": 0, "done": 0, "stopped": 1}


def test_an_empty_body_saves_the_suggested_messages_off_and_enabled_alone_switches_them_on(world):
    client = token_client(world.owner)
    response = client.put(url(world.creator, "welcome"), {}, content_type=JSON)
    assert response.status_code == 200, response.content
    automation = Automation.objects.get()
    assert not automation.enabled
    assert [step["text"] for step in automation.steps] == [step["text"] for step in DEFAULT_STEPS["welcome"]]
    response = client.put(url(world.creator, "welcome"), {"enabled": True}, content_type=JSON)
    assert response.status_code == 200 and response.json()["enabled"] is True
    assert Automation.objects.get().enabled


# --- Validation: the step's field is named, nothing is saved ------------------------------------------


def step(delay=5, text="Hi {fan.first_name|babe}", **more) -> dict:
    return {"delay_minutes": delay, "text": text, **more}


@pytest.mark.parametrize(
    ("kind", "body", "status", "field"),
    [
        ("welcome", {"steps": [step(), step(delay=2, text="Again")]}, 400, "step2_delay"),
        ("ppv_followup", {"steps": [step(delay=5)]}, 400, "step1_delay"),
        ("welcome", {"steps": [step(text="Hi {fan.age}")]}, 400, "step1_text"),
        ("welcome", {"steps": [step(text="   ")]}, 400, "step1_text"),
        ("welcome", {"steps": [step(text="x" * 1001)]}, 400, "step1_text"),
        ("welcome", {"steps": [step(ppv_price="1.00", media=["v1"])]}, 400, "step1_price"),
        ("welcome", {"steps": [step(ppv_price="15.00")]}, 400, "step1_media"),
        ("welcome", {"enabled": True, "steps": []}, 400, "steps"),
        ("welcome", {"steps": [step()] * 4}, 422, "steps"),
        ("welcome", {"steps": [step(delay=-1)]}, 422, "steps.0.delay_minutes"),
        ("welcome", {"steps": [step(delay=30 * 24 * 60 + 1)]}, 422, "steps.0.delay_minutes"),
        ("welcome", {"steps": [step(ppv_price="0.001", media=["v1"])]}, 422, "steps.0.ppv_price"),
        ("welcome", {"steps": [step(media=["v"] * 21)]}, 422, "steps.0.media"),
        ("welcome", {"enabled": "maybe"}, 422, "enabled"),
        ("birthday", {}, 422, "kind"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(world, kind, body, status, field):
    response = token_client(world.owner).put(url(world.creator, kind), body, content_type=JSON)
    assert response.status_code == status, response.content
    assert field in error(response)["fields"], error(response)
    assert not Automation.objects.exists()


def test_an_archived_creator_cannot_be_switched_on(world):
    world.creator.is_archived = True
    world.creator.save()
    client = token_client(world.owner)
    response = client.put(url(world.creator), {"enabled": True}, content_type=JSON)
    assert response.status_code == 400 and "archived" in error(response)["fields"]["enabled"][0]
    assert not Automation.objects.exists()
    assert client.put(url(world.creator), {"enabled": False}, content_type=JSON).status_code == 200


def test_an_unknown_kind_is_a_422_on_every_operation(world):
    client = token_client(world.owner)
    for response in (client.get(url(world.creator, "birthday")), client.get(url(world.creator, "birthday", "/runs"))):
        assert response.status_code == 422 and "kind" in error(response)["fields"]


# --- Tenancy and roles --------------------------------------------------------------------------------


def test_another_agencys_creator_is_not_found(world, other_world):
    automation = switch_on(world)
    add_runs(automation, 1)
    outsider = token_client(other_world.owner)
    for response in (
        outsider.get(url(world.creator)),
        outsider.get(url(world.creator, suffix="/runs")),
        outsider.get(f"/api/v1/automations?creator_id={world.creator.pk}"),
        outsider.put(url(world.creator), {"enabled": False}, content_type=JSON),
        outsider.put(url(world.creator, "expired"), {"steps": [step()]}, content_type=JSON),
    ):
        assert response.status_code == 404 and error(response)["code"] == "not_found"
    listing = outsider.get("/api/v1/automations").json()
    assert {item["creator_id"] for item in listing["items"]} == {other_world.creator.pk, other_world.other_creator.pk}
    assert "Velvet" not in str(listing)
    automation.refresh_from_db()
    assert automation.enabled and Automation.objects.count() == 1
    assert AutomationRun.objects.get().status == "active"


def test_a_chatter_a_viewer_and_a_read_token_read_but_cannot_write(world, client_for):
    automation = switch_on(world)
    add_runs(automation, 1)
    for client in (token_client(world.chatter), client_for(world.viewer), token_client(world.owner, scope="read")):
        assert client.get("/api/v1/automations").status_code == 200
        assert client.get(url(world.creator)).status_code == 200
        assert client.get(url(world.creator, suffix="/runs")).json()["count"] == 1
        responses = [
            client.put(url(world.creator), {"enabled": False}, content_type=JSON),
            client.put(url(world.creator, "expired"), {"enabled": True, "steps": [step()]}, content_type=JSON),
        ]
        assert [response.status_code for response in responses] == [403, 403]
        assert error(responses[0])["code"] == "permission_denied"
    automation.refresh_from_db()
    assert automation.enabled and Automation.objects.count() == 1


def test_a_chatter_sees_only_their_assigned_creator(world):
    switch_on(world, creator=world.other_creator)
    client = token_client(world.chatter)
    listing = client.get("/api/v1/automations").json()
    assert [item["creator_id"] for item in listing["items"]] == [world.creator.pk]
    assert client.get(url(world.other_creator)).status_code == 404
    assert client.get(url(world.other_creator, suffix="/runs")).status_code == 404
    assert client.get(f"/api/v1/automations?creator_id={world.other_creator.pk}").status_code == 404


# --- Runs ---------------------------------------------------------------------------------------------


def test_runs_are_paged_newest_first_and_filtered_by_status(world):
    automation = switch_on(world)
    active = add_runs(automation, 26)
    (stopped,) = add_runs(automation, 1, status="stopped", stop_reason="The fan bought something.", sent=1, step=1)
    client = token_client(world.viewer)
    first = client.get(url(world.creator, suffix="/runs")).json()
    assert (first["count"], len(first["items"])) == (27, 25)
    assert first["items"][0]["id"] == stopped.pk  # newest first
    item = first["items"][0]
    assert item == {
        "id": stopped.pk, "fan_id": stopped.fan_id, "fan_username": stopped.fan.username,
        "fan_display_name": stopped.fan.display_name, "trigger": f"sub-{stopped.fan_id}",
        "event_at": item["event_at"], "status": "stopped", "stop_reason": "The fan bought something.",
        "step": 1, "sent": 1, "next_at": None, "created_at": item["created_at"],
    }  # fmt: skip
    assert item["event_at"] and item["created_at"]
    second = client.get(url(world.creator, suffix="/runs?page=2")).json()
    assert [run["id"] for run in second["items"]] == [run.pk for run in active[:2]][::-1]
    only = client.get(url(world.creator, suffix="/runs?status=stopped")).json()
    assert [run["id"] for run in only["items"]] == [stopped.pk]
    active_page = client.get(url(world.creator, suffix="/runs?status=active&page_size=5")).json()
    assert active_page["count"] == 26 and all(run["next_at"] for run in active_page["items"])
    response = client.get(url(world.creator, suffix="/runs?status=lost"))
    assert response.status_code == 422 and "status" in error(response)["fields"]


def test_an_automation_never_saved_has_no_runs(world):
    response = token_client(world.owner).get(url(world.creator, "renewal_off", "/runs"))
    assert response.status_code == 200 and response.json() == {"items": [], "count": 0}


def test_runs_cost_the_same_whatever_the_page_length(world, django_assert_max_num_queries):
    automation = switch_on(world)
    add_runs(automation, 30)
    client = token_client(world.owner)
    # token, its stamp, the creator, the automation, count, the page with its fans
    with django_assert_max_num_queries(6):
        assert len(client.get(url(world.creator, suffix="/runs")).json()["items"]) == 25


# --- The list's cost ----------------------------------------------------------------------------------


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/automations?page_size=100")
    assert response.status_code == 200
    return len(queries)


def test_the_list_costs_the_same_whatever_the_number_of_creators_and_runs(world, django_assert_max_num_queries):
    switch_on(world)
    client = token_client(world.owner)
    _list_queries(client)  # the token's first use stamps it once
    few = _list_queries(client)
    for index in range(6):
        creator = CreatorFactory(agency=world.agency, display_name=f"Velvet Extra {index}")
        for kind in KINDS:
            add_runs(switch_on(world, kind, creator=creator), 2)
    # token, its stamp, count, the page of creators, their saved automations, their runs' counts
    with django_assert_max_num_queries(6):
        listing = client.get("/api/v1/automations?page_size=100").json()
    assert listing["count"] == 8
    assert _list_queries(client) == few
    assert sum(a["runs_last_7_days"]["active"] for item in listing["items"] for a in item["automations"]) == 48
