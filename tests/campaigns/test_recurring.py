"""Recurring campaigns: when an occurrence starts sending, the next is scheduled a day or a week
later at the same local time in the creator's timezone (across a DST change too), once however
often start runs, until ``repeat_until``; cancelling an occurrence cancels only it; the page says
how it repeats and links the other occurrences in a constant number of queries; the form and the
API refuse a repeat without a send time and an end before it or more than a year ahead."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignSettings, CampaignStatus
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery
from tests.campaigns.conftest import make_campaign
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory, SegmentFactory

pytestmark = pytest.mark.django_db

JSON = "application/json"
PARIS = ZoneInfo("Europe/Paris")
STEPS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@pytest.fixture(autouse=True)
def paid(world):
    """The clock moves to the next DST change, months past the free trial: a paying agency, so
    billing's read-only rule (a trial that ended sends nothing) is not what these tests meet."""
    from apps.billing import entitlements
    from apps.billing.models import Subscription

    Subscription.objects.filter(agency=world.agency).update(status="active", trial_ends_at=None)
    entitlements.invalidate(world.agency.pk)


@pytest.fixture
def paris(world):
    world.creator.timezone = "Europe/Paris"
    world.creator.save()
    return world


def evening(day) -> datetime:
    return datetime.combine(day, time(20, 0), PARIS)


def evening_before_dst_change(step: timedelta) -> datetime:
    """20:00 in Paris on a day whose occurrence ``step`` later is on the other side of a DST
    change (both in the future; the next change is at most about seven months away)."""
    day = (timezone.now() + timedelta(days=2)).astimezone(PARIS).date()
    while evening(day).utcoffset() == evening(day + step).utcoffset():
        day += timedelta(days=1)
    return evening(day)


def start_at(monkeypatch, campaign_id: int, when: datetime) -> str:
    """Start the campaign as the worker would at ``when`` (the clock set there)."""
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: when.astimezone(UTC))
        return services.campaign_start(campaign_id=campaign_id)


def recurring(world, fans, **overrides):
    values = {"fan_ids": [fan.pk for fan in fans], "send_at": evening_before_dst_change(STEPS["daily"])}
    values.update(overrides)
    campaign = make_campaign(world, repeat=values.pop("repeat", "daily"), **values)
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    return campaign


# --- The next occurrence ------------------------------------------------------------------------


@pytest.mark.parametrize("repeat", ["daily", "weekly"])
def test_the_next_occurrence_keeps_the_local_time_across_a_dst_change(paris, fans, monkeypatch, repeat):
    first_at = evening_before_dst_change(STEPS[repeat])
    first = recurring(paris, fans, repeat=repeat, send_at=first_at)
    assert start_at(monkeypatch, first.pk, first_at + timedelta(seconds=30)) == CampaignStatus.SENDING

    upcoming = Campaign.objects.get(repeat_of=first)
    local = upcoming.send_at.astimezone(PARIS)
    assert (local.date(), local.hour, local.minute) == ((first_at + STEPS[repeat]).date(), 20, 0)
    assert local.utcoffset() != first_at.utcoffset()  # the UTC time moved by an hour; the local one did not
    assert upcoming.status == CampaignStatus.SCHEDULED


def test_the_next_occurrence_is_a_copy_with_its_own_audience_at_its_own_send_time(world, monkeypatch):
    CampaignSettings.objects.create(agency=world.agency, approval_above=1)
    everyone = SegmentFactory(agency=world.agency, creator=world.creator, name="Everyone", filters={})
    FanFactory.create_batch(2, creator=world.creator)
    first_at = timezone.now() + timedelta(hours=2)
    first = make_campaign(
        world, world.chatter, segment=everyone, send_at=first_at, repeat="weekly", ppv_price="15.00",
        media=["vault-1"], exclude_messaged_within_hours=12, exclude_bought_offer=True, text="Hi {fan.first_name|babe}",
    )  # fmt: skip
    services.campaign_schedule(membership=world.chatter, campaign=first)
    services.campaign_approve(membership=world.manager, campaign=first)
    start_at(monkeypatch, first.pk, first_at)

    upcoming = Campaign.objects.get(repeat_of=first)
    copied = ("name", "creator_id", "segment_id", "text", "ppv_price", "media", "exclude_messaged_within_hours",
              "exclude_bought_offer", "mode", "repeat", "created_by_id", "approved_by_id")  # fmt: skip
    assert {name: getattr(upcoming, name) for name in copied} == {name: getattr(first, name) for name in copied}
    assert (upcoming.status, upcoming.targeted, upcoming.started_at) == (CampaignStatus.SCHEDULED, 0, None)
    assert upcoming.send_at == first_at.astimezone(PARIS) + timedelta(days=7)  # a week later, Paris time

    FanFactory(creator=world.creator, username="joined_later")
    start_at(monkeypatch, upcoming.pk, upcoming.send_at)
    targeted = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=upcoming.pk).count()
    assert targeted == 3  # the segment resolved again: the fan who joined in between is in
    third = Campaign.objects.get(repeat_of=first, send_at=upcoming.send_at + timedelta(days=7))
    assert third.repeat_of_id == first.pk  # every occurrence points at the series' first campaign


def test_starting_twice_writes_one_next_occurrence(world, fans, monkeypatch):
    first = recurring(world, fans)
    when = first.send_at + timedelta(seconds=5)
    assert start_at(monkeypatch, first.pk, when) == CampaignStatus.SENDING
    assert start_at(monkeypatch, first.pk, when) == "skipped"
    assert Campaign.objects.filter(repeat_of=first).count() == 1
    first.refresh_from_db()
    assert services._schedule_next(first, now=when) is None  # any other path: the series already has it
    assert Campaign.objects.filter(repeat_of=first).count() == 1


def test_the_series_stops_at_repeat_until(world, fans, monkeypatch):
    first_at = timezone.now() + timedelta(hours=2)
    first = recurring(world, fans, send_at=first_at, repeat_until=first_at + timedelta(days=1, hours=1))
    start_at(monkeypatch, first.pk, first_at)
    second = Campaign.objects.get(repeat_of=first)
    start_at(monkeypatch, second.pk, second.send_at)
    assert [c.pk for c in Campaign.objects.filter(repeat_of=first)] == [second.pk]  # a third would be past the end


def test_a_start_that_ran_late_is_followed_by_one_occurrence_ahead(world, fans, monkeypatch):
    first_at = timezone.now() + timedelta(hours=2)
    first = recurring(world, fans, send_at=first_at)
    late = first_at + timedelta(days=3, hours=1)
    start_at(monkeypatch, first.pk, late)
    ahead = first_at.astimezone(PARIS) + timedelta(days=4)  # the 4th day's, Paris time: the missed ones skipped
    assert [c.send_at for c in Campaign.objects.filter(repeat_of=first)] == [ahead]


def test_cancelling_an_occurrence_cancels_only_it(world, fans, monkeypatch, client_for):
    first = recurring(world, fans, send_at=timezone.now() + timedelta(hours=2))
    start_at(monkeypatch, first.pk, first.send_at)
    upcoming = Campaign.objects.get(repeat_of=first)
    client = client_for(world.owner)
    client.post(reverse("campaigns:cancel", args=[first.pk]))
    first.refresh_from_db()
    upcoming.refresh_from_db()
    assert (first.status, upcoming.status) == (CampaignStatus.CANCELLED, CampaignStatus.SCHEDULED)
    client.post(reverse("campaigns:cancel", args=[upcoming.pk]))  # ends the series: it never starts
    assert start_at(monkeypatch, upcoming.pk, upcoming.send_at) == "skipped"
    assert Campaign.objects.filter(repeat_of=first).count() == 1


# --- Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"repeat": "daily"}, "send_at", "needs a send time"),
        ({"repeat": "daily", "send_at": 2, "repeat_until": 1}, "repeat_until", "after the first send time"),
        ({"repeat": "weekly", "send_at": 2, "repeat_until": 400 * 24}, "repeat_until", "at most a year ahead"),
        ({"repeat": "monthly", "send_at": 2}, "repeat", "every day, every week"),
    ],
)
def test_bad_repeats_are_refused_with_the_field_named_and_nothing_saved(world, fans, overrides, field, words):
    now = timezone.now()
    for name in ("send_at", "repeat_until"):
        if name in overrides:
            overrides[name] = now + timedelta(hours=overrides[name])
    with pytest.raises(ApplicationError) as caught:
        make_campaign(world, fan_ids=[fans[0].pk], **overrides)
    assert (caught.value.field, words in caught.value.message) == (field, True), caught.value.message
    assert not Campaign.objects.exists()


def test_an_end_date_on_a_campaign_sent_once_is_dropped(world, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk], repeat_until=timezone.now() + timedelta(days=3))
    assert (campaign.repeat, campaign.repeat_until) == ("", None)


def form_data(world, fans, **overrides):
    data = {"creator": world.creator.pk, "name": "Nightly tease", "fan_usernames": fans[0].username,
            "text": "Hey {fan.first_name|babe}", "repeat": "daily"}  # fmt: skip
    data.update(overrides)
    return data


def local(when: datetime) -> str:
    return when.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("send_in", "until_in", "message"),
    [
        (None, None, "needs a send time"),
        (48, 24, "after the first send time"),
        (48, 400 * 24, "at most a year ahead"),
    ],
)
def test_the_form_shows_repeat_errors_and_saves_nothing(paris, fans, client_for, send_in, until_in, message):
    now = timezone.now()
    fields = {}
    if send_in is not None:
        fields["send_at"] = local(now + timedelta(hours=send_in))
    if until_in is not None:
        fields["repeat_until"] = local(now + timedelta(hours=until_in))
    response = client_for(paris.owner).post(reverse("campaigns:create"), form_data(paris, fans, **fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_api_refuses_bad_repeats_with_400_and_the_field(world, fans):
    client = token_client(world.owner)
    base = {"creator_id": world.creator.pk, "name": "Nightly", "text": "Hi", "fan_ids": [fans[0].pk]}
    response = client.post("/api/v1/campaigns", {**base, "repeat": "daily"}, content_type=JSON)
    assert response.status_code == 400 and "send_at" in error(response)["fields"]
    later = timezone.now() + timedelta(days=2)
    response = client.post(
        "/api/v1/campaigns",
        {
            **base,
            "repeat": "daily",
            "send_at": later.isoformat(),
            "repeat_until": (later - timedelta(hours=1)).isoformat(),
        },
        content_type=JSON,
    )
    assert response.status_code == 400
    assert "after the first send time" in error(response)["fields"]["repeat_until"][0]
    assert not Campaign.objects.exists()


# --- The form, the page and the API -------------------------------------------------------------


def test_the_form_takes_the_end_in_the_creators_timezone_and_the_edit_page_shows_it(paris, fans, client_for):
    client = client_for(paris.owner)
    send_at = (timezone.now() + timedelta(days=2)).astimezone(PARIS).replace(hour=20, minute=0, second=0, microsecond=0)
    until = send_at + timedelta(days=14)
    response = client.post(
        reverse("campaigns:create"),
        form_data(paris, fans, repeat="weekly", send_at=local(send_at), repeat_until=local(until)),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.repeat, campaign.repeat_until) == ("weekly", until)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert f"Repeats every week at the same local time until {until:%a %b} {until.day} {until:%Y}, 20:00" in page
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert f'value="{local(until)}"' in edit and '<option value="weekly" selected>' in edit


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_links_the_other_occurrences_in_a_constant_number_of_queries(world, fans, monkeypatch, client_for):
    first = recurring(world, fans, send_at=timezone.now() + timedelta(hours=2))
    start_at(monkeypatch, first.pk, first.send_at)
    second = Campaign.objects.get(repeat_of=first)
    client = client_for(world.owner)
    url = reverse("campaigns:detail", args=[second.pk])
    client.get(url)  # warm the session
    before = _queries(client, url)
    page = client.get(url).content.decode()
    assert "Repeats every day" in page and reverse("campaigns:detail", args=[first.pk]) in page
    first_page = client.get(reverse("campaigns:detail", args=[first.pk])).content.decode()
    assert reverse("campaigns:detail", args=[second.pk]) in first_page

    for index in range(2, 8):  # a longer series, as months of occurrences would make it
        Campaign.objects.create(
            agency=world.agency, creator=world.creator, name=first.name, text=first.text, fan_ids=first.fan_ids,
            repeat="daily", repeat_of=first, send_at=first.send_at + timedelta(days=index),
            status=CampaignStatus.COMPLETED,
        )  # fmt: skip
    assert _queries(client, url) == before


def test_the_api_creates_shows_and_lists_a_series(world, other_world, fans, monkeypatch):
    world.creator.timezone = "Europe/Paris"
    world.creator.save()
    client = token_client(world.owner)
    send_at = evening_before_dst_change(STEPS["daily"])
    response = client.post(
        "/api/v1/campaigns",
        {"creator_id": world.creator.pk, "name": "Nightly", "text": "Hi", "fan_ids": [fans[0].pk],
         "send_at": send_at.replace(tzinfo=None).isoformat(), "repeat": "daily",
         "repeat_until": (send_at + timedelta(days=10)).replace(tzinfo=None).isoformat()},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["repeat"], created["repeat_of_id"]) == ("daily", None)
    assert created["repeat_until"] == (send_at + timedelta(days=10)).astimezone(UTC).isoformat().replace("+00:00", "Z")

    url = f"/api/v1/campaigns/{created['id']}"
    kept = client.patch(url, {"repeat": None, "name": "Nightly tease"}, content_type=JSON).json()
    assert (kept["repeat"], kept["repeat_until"]) == ("daily", created["repeat_until"])
    client.post(f"{url}/schedule")
    start_at(monkeypatch, created["id"], send_at)
    upcoming = Campaign.objects.get(repeat_of_id=created["id"])
    assert client.get(f"/api/v1/campaigns/{upcoming.pk}").json()["repeat_of_id"] == created["id"]
    listed = client.get(f"/api/v1/campaigns?series_id={upcoming.pk}").json()
    assert sorted(item["id"] for item in listed["items"]) == [created["id"], upcoming.pk]

    outsider = token_client(other_world.owner)
    assert outsider.get(f"/api/v1/campaigns?series_id={created['id']}").status_code == 404
    assert outsider.get(f"/api/v1/campaigns/{upcoming.pk}").status_code == 404
    assert outsider.patch(url, {"repeat": ""}, content_type=JSON).status_code == 404
    assert Campaign.objects.get(pk=created["id"]).repeat == "daily"


def test_another_agencys_member_cannot_see_an_occurrence_page(world, other_world, fans, monkeypatch, client_for):
    first = recurring(world, fans, send_at=timezone.now() + timedelta(hours=2))
    start_at(monkeypatch, first.pk, first.send_at)
    upcoming = Campaign.objects.get(repeat_of=first)
    outsider = client_for(other_world.owner)
    for campaign in (first, upcoming):
        assert outsider.get(reverse("campaigns:detail", args=[campaign.pk])).status_code == 404
        assert outsider.post(reverse("campaigns:cancel", args=[campaign.pk])).status_code == 404
    upcoming.refresh_from_db()
    assert upcoming.status == CampaignStatus.SCHEDULED
