"""Mass mode: a campaign sent as one platform-side mass message per platform account (one call,
the same text for every fan) instead of one direct message per fan. Validation (no per-fan
variables, platforms with mass messages only), start, exactly-once sending with retries, each
fan's conversation, stats and the progress page, pause and cancel before the call, the form,
the API and tenancy."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignStatus
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery, MassRecipient, SimulatedMassMessage, SimulatedOutboundMessage
from apps.delivery.services import delivery_pump
from apps.delivery.tasks import deliver
from tests.campaigns.conftest import campaign_input, make_campaign
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db

JSON = "application/json"
MASS_TEXT = "New set tonight from {creator.first_name}, only for my fans 🔥"
NO_MASS = "tests.delivery.test_mass.NoMassConnector"


def mass_campaign(world, fans, **overrides):
    values = {"mode": "mass", "text": MASS_TEXT, "fan_ids": [fan.pk for fan in fans]}
    return make_campaign(world, **(values | overrides))


def start(campaign, capture):
    with capture():
        services.campaign_schedule(membership=campaign_owner(campaign), campaign=campaign)
        return services.campaign_start(campaign_id=campaign.pk)


def campaign_owner(campaign):
    from apps.accounts.models import Membership, Role

    return Membership.objects.get(agency_id=campaign.agency_id, role=Role.OWNER)


def pump(world, platform="onlyfans"):
    return delivery_pump(creator_id=world.creator.pk, platform=platform, seconds=5)


def deliveries(campaign):
    return Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk).order_by("id")


def stats(campaign):
    campaign.refresh_from_db()
    return services.campaign_stats(campaigns=[campaign])[campaign.pk]


# --- Validation: clear errors on the field, nothing saved ---------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Hey {fan.first_name|babe}, new set!", "{fan.first_name}"),
        ("{fan.name}, {fan.username} and {fan.name} again", "{fan.name}, {fan.username}"),
    ],
)
def test_variables_filled_per_fan_are_refused_on_the_text(world, fans, text, named):
    with pytest.raises(ApplicationError) as caught:
        mass_campaign(world, fans, text=text)
    assert caught.value.field == "text"
    assert f"A mass message is one text for every fan, so {named} cannot be filled per fan" in caught.value.message
    assert "direct messages" in caught.value.message
    assert not Campaign.objects.exists()


def test_a_platform_without_mass_messages_is_refused_on_the_mode(world, fans, settings):
    settings.DELIVERY_CONNECTORS = {"fansly": NO_MASS}
    fansly_fan = FanFactory(creator=world.creator, platform="fansly", platform_fan_id="fs-1")
    with pytest.raises(ApplicationError) as caught:
        mass_campaign(world, [*fans, fansly_fan])
    assert caught.value.field == "mode"
    assert "Fansly takes no platform-side mass message here; send one direct message per fan" in caught.value.message
    assert not Campaign.objects.exists()
    assert mass_campaign(world, fans).mode == "mass"  # OnlyFans has mass messages


def test_an_unknown_mode_is_refused(world, fans):
    with pytest.raises(ApplicationError) as caught:
        mass_campaign(world, fans, mode="carrier-pigeon")
    assert caught.value.field == "mode"
    assert not Campaign.objects.exists()


def test_switching_an_existing_draft_to_mass_is_checked_too(world, fans):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])  # direct, with {fan.first_name|babe}
    data = campaign_input(world, fan_ids=[fan.pk for fan in fans], mode="mass")
    with pytest.raises(ApplicationError, match="one text for every fan"):
        services.campaign_update(membership=world.owner, campaign=campaign, data=data)
    campaign.refresh_from_db()
    assert campaign.mode == "direct"


# --- Start: one mass delivery per platform account ---------------------------------------------------


def test_start_writes_one_mass_delivery_per_platform_account(world, fans, django_capture_on_commit_callbacks):
    fansly = [FanFactory(creator=world.creator, platform="fansly", platform_fan_id=f"fs-{i}") for i in range(2)]
    campaign = mass_campaign(world, [*fans, *fansly], ppv_price=Decimal("12.00"), media=["vault-7"])
    assert start(campaign, django_capture_on_commit_callbacks) == CampaignStatus.SENDING
    assert services.campaign_start(campaign_id=campaign.pk) == "skipped"
    rows = list(deliveries(campaign))
    assert [(row.platform, row.kind, row.recipient_count, row.idempotency_key) for row in rows] == [
        ("fansly", "mass", 2, f"campaign-{campaign.pk}-mass-fansly"),
        ("onlyfans", "mass", 5, f"campaign-{campaign.pk}-mass-onlyfans"),
    ]
    assert {(row.text, row.ppv_price, row.media_count) for row in rows} == {
        ("New set tonight from Velvet, only for my fans 🔥", Decimal("12.00"), 1)  # the creator's name filled
    }
    onlyfans = MassRecipient.objects.filter(delivery=rows[1]).values_list("recipient_id", flat=True)
    assert list(onlyfans) == [fan.platform_fan_id for fan in fans]
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.excluded) == (7, 0)
    assert (stats(campaign).queued, stats(campaign).percent) == (7, 0)


# --- Sending: one platform call, each fan's conversation, stats --------------------------------------


def test_one_mass_message_reaches_every_fan_and_each_conversation_shows_it(
    world, fans, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Conversation, Message, PurchaseKind
    from apps.messaging.services import purchase_record

    campaign = mass_campaign(world, fans, ppv_price=Decimal("15.00"), media=["v-1"])
    start(campaign, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert pump(world) == {"sent": 1}
    received = SimulatedMassMessage.objects.get()
    assert received.recipient_ids == [fan.platform_fan_id for fan in fans]
    assert not SimulatedOutboundMessage.objects.exists()
    assert (stats(campaign).sent, stats(campaign).percent) == (5, 100)

    services.campaigns_tick()
    services.campaigns_tick()  # recording twice records once
    messages = list(Message.objects.filter(campaign_id=campaign.pk).order_by("fan_id"))
    assert [(m.fan_id, m.source, m.status, m.platform_message_id) for m in messages] == [
        (fan.pk, "campaign", "sent", received.platform_message_id) for fan in fans
    ]
    mass_key = deliveries(campaign).get().idempotency_key
    assert len({m.idempotency_key for m in messages}) == 5
    assert all(m.idempotency_key.startswith(f"{mass_key}:") for m in messages)
    thread = Conversation.objects.get(fan=fans[0])
    assert thread.last_message_preview == "New set tonight from Velvet, only for my fans 🔥"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED

    purchase_record(fan=fans[2], kind=PurchaseKind.PPV, amount=Decimal("15.00"), message=messages[2])
    numbers = stats(campaign)
    assert (numbers.sent, numbers.unlocked, numbers.revenue) == (5, 1, {"USD": Decimal("15.00")})


def test_a_retry_after_the_answer_was_lost_sends_no_second_mass_message(
    world, fans, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    flaky = FanFactory(creator=world.creator, platform_fan_id="lost-answer-1-fan")
    campaign = mass_campaign(world, [*fans, flaky])
    start(campaign, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert pump(world) == {"failed": 1}
    numbers = stats(campaign)
    assert (numbers.retrying, numbers.sent, numbers.unfinished) == (6, 0, 6)
    services.campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING  # not complete while the retry is due

    delivery = deliveries(campaign).get()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(delivery.pk) == "sent"
    key = delivery.idempotency_key
    assert SimulatedMassMessage.objects.filter(agency=world.agency, idempotency_key=key).count() == 1
    assert (stats(campaign).sent, stats(campaign).retrying) == (6, 0)
    services.campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED


def test_fans_the_platform_refuses_are_counted_apart_and_not_put_in_conversations(
    world, fans, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Message
    from apps.notifications.models import Notification

    blocked = FanFactory(creator=world.creator, platform_fan_id="fail-permanent-blocked")
    campaign = mass_campaign(world, [*fans, blocked])
    start(campaign, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        pump(world)
    numbers = stats(campaign)
    assert (numbers.targeted, numbers.sent, numbers.rejected, numbers.dead, numbers.percent) == (6, 5, 1, 0, 100)
    assert numbers.as_dict()["rejected"] == 1
    services.campaigns_tick()
    assert set(Message.objects.filter(campaign_id=campaign.pk).values_list("fan_id", flat=True)) == {
        fan.pk for fan in fans
    }
    done = Notification.objects.get(user=world.owner.user, title__contains="is done")
    assert "Sent to 5 of 6 fans. The platform refused 1 of them" in done.body


def test_a_dead_mass_message_counts_all_its_fans_as_dead(world, settings, django_capture_on_commit_callbacks):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    settings.DELIVERY_MAX_ATTEMPTS = 1
    fans = [FanFactory(creator=world.creator) for _ in range(24)] + [
        FanFactory(creator=world.creator, platform_fan_id="fail-retry-fan")
    ]
    campaign = mass_campaign(world, fans)
    start(campaign, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert pump(world) == {"dead": 1}
    numbers = stats(campaign)
    assert (numbers.dead, numbers.sent, numbers.percent) == (25, 0, 100)
    assert services.campaigns_tick()["completed"] == 1


# --- Pause and cancel before the call ------------------------------------------------------------


def test_pause_before_the_call_holds_it_and_resume_sends_it_once(world, fans, django_capture_on_commit_callbacks):
    campaign = mass_campaign(world, fans)
    start(campaign, django_capture_on_commit_callbacks)
    services.campaign_pause(membership=world.owner, campaign=campaign)
    assert list(deliveries(campaign).values_list("status", flat=True)) == ["held"]
    assert pump(world) == {}
    assert not SimulatedMassMessage.objects.exists()
    assert stats(campaign).queued == 5
    with django_capture_on_commit_callbacks():
        services.campaign_resume(membership=world.owner, campaign=campaign)
    assert pump(world) == {"sent": 1}
    assert SimulatedMassMessage.objects.count() == 1


def test_cancel_before_the_call_sends_nothing(world, fans, django_capture_on_commit_callbacks):
    campaign = mass_campaign(world, fans)
    start(campaign, django_capture_on_commit_callbacks)
    services.campaign_cancel(membership=world.owner, campaign=campaign)
    assert pump(world) == {}
    assert not SimulatedMassMessage.objects.exists()
    numbers = stats(campaign)
    assert (numbers.cancelled, numbers.sent, numbers.percent) == (5, 0, 100)


def test_a_start_on_a_platform_that_lost_its_mass_messages_returns_to_draft(
    world, fans, settings, django_capture_on_commit_callbacks
):
    campaign = mass_campaign(world, fans)
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=campaign)
    settings.DELIVERY_CONNECTORS = {"onlyfans": NO_MASS}  # the platform's connector changed since
    with django_capture_on_commit_callbacks(execute=True):
        assert services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.DRAFT
    campaign.refresh_from_db()
    assert "OnlyFans takes no platform-side mass message" in campaign.last_error
    assert not deliveries(campaign).exists()


def test_a_direct_campaign_whose_rendered_text_is_too_long_returns_to_draft_too(
    world, django_capture_on_commit_callbacks
):
    """The savepoint around the enqueue keeps the start's transaction usable to record why."""
    from apps.notifications.models import Notification

    fan = FanFactory(creator=world.creator, display_name="Maximilian Alexander Longname")
    campaign = make_campaign(world, fan_ids=[fan.pk], text="x" * 985 + " {fan.name}")
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.DRAFT
    campaign.refresh_from_db()
    assert campaign.last_error.startswith("Could not start: Message 1:") and not deliveries(campaign).exists()
    assert Notification.objects.filter(user=world.owner.user, title__contains="could not start").exists()


# --- The "messaged lately" exclusion sees mass messages -----------------------------------------


def test_fans_reached_by_a_mass_message_count_as_recently_messaged(world, fans, django_capture_on_commit_callbacks):
    first = mass_campaign(world, fans[:2])
    start(first, django_capture_on_commit_callbacks)
    pump(world)
    second = make_campaign(world, fan_ids=[fan.pk for fan in fans], exclude_messaged_within_hours=24)
    _, kept = services.campaign_audience(second)
    assert sorted(kept.values_list("pk", flat=True)) == sorted(fan.pk for fan in fans[2:])
    later = services.campaign_audience(second, now=timezone.now() + timedelta(hours=25))[1]
    assert later.count() == 5


def test_mass_and_direct_messages_add_up_toward_the_fans_frequency_cap(world, fans, django_capture_on_commit_callbacks):
    from apps.campaigns.models import CampaignSettings

    CampaignSettings.objects.create(agency=world.agency, fan_cap_per_day=2)
    start(mass_campaign(world, fans[:3]), django_capture_on_commit_callbacks)  # 1 each for fans 0-2
    start(make_campaign(world, fan_ids=[fans[0].pk, fans[3].pk]), django_capture_on_commit_callbacks)  # fan 0: 2
    third = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    _, kept = services.campaign_audience(third)
    # Fan 0 got one mass and one direct message: at the cap. Fans 1-4 got one: under it.
    assert sorted(kept.values_list("pk", flat=True)) == sorted(fan.pk for fan in fans[1:])
    assert services.campaign_preview(campaign=third).recipients == 4


# --- Pages: the form's mode, the progress page ---------------------------------------------------


def form_data(world, **overrides):
    data = {
        "creator": world.creator.pk, "name": "Mass drop", "segment": "", "fan_usernames": "",
        "mode": "mass", "text": "Tonight only 🔥", "ppv_price": "", "media": "", "send_at": "",
        "exclude_messaged_within_hours": "", "exclude_no_spend_days": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_the_form_offers_both_modes_and_explains_them(world, client_for):
    page = client_for(world.owner).get(reverse("campaigns:create")).content.decode()
    assert 'type="radio" name="mode" value="direct"' in page and 'value="mass"' in page
    assert "one call to the platform, the same text for every fan" in page


def test_a_mass_draft_from_the_form_and_its_progress_page(world, fans, client_for, django_capture_on_commit_callbacks):
    client = client_for(world.owner)
    usernames = ", ".join(fan.username for fan in fans)
    response = client.post(reverse("campaigns:create"), form_data(world, fan_usernames=usernames))
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and campaign.mode == "mass"
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert 'value="mass" id="id_mode_1" checked' in edit  # the edit form keeps the mode
    with django_capture_on_commit_callbacks():
        client.post(reverse("campaigns:schedule", args=[campaign.pk]))
    services.campaign_start(campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):
        pump(world)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "One platform mass message per platform account" in page
    assert "5 fans (one mass message)" in page
    assert "<dt>Sent</dt><dd>5</dd>" in page and "<dt>Refused by the platform</dt><dd>0</dd>" in page
    assert "100%" in page


def test_a_per_fan_variable_in_the_form_is_an_error_on_the_message_and_nothing_is_saved(world, fans, client_for):
    response = client_for(world.owner).post(
        reverse("campaigns:create"),
        form_data(world, fan_usernames=fans[0].username, text="Hi {fan.first_name|babe}!"),
    )
    assert response.status_code == 400
    assert "A mass message is one text for every fan" in response.context["form"].errors["text"][0]
    assert "Hi {fan.first_name|babe}!" in response.content.decode()  # what was typed is kept
    assert not Campaign.objects.exists()


def test_list_and_page_queries_stay_bounded_with_mass_and_direct_campaigns(
    world, fans, client_for, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client = client_for(world.owner)
    for index in range(3):
        mass_campaign(world, fans, name=f"Mass {index}")
        make_campaign(world, fan_ids=[fan.pk for fan in fans], name=f"Direct {index}")
    campaign = mass_campaign(world, fans, name="Started")
    start(campaign, django_capture_on_commit_callbacks)
    client.get(reverse("campaigns:list"))  # warm the session
    with django_assert_max_num_queries(14):
        assert client.get(reverse("campaigns:list")).status_code == 200
    with django_assert_max_num_queries(17):
        assert client.get(reverse("campaigns:detail", args=[campaign.pk])).status_code == 200


# --- API ------------------------------------------------------------------------------------------------


def body(world, fans, **overrides) -> dict:
    values = {"creator_id": world.creator.pk, "name": "Mass drop", "text": MASS_TEXT, "mode": "mass"}
    return values | {"fan_ids": [fan.pk for fan in fans]} | overrides


def test_api_creates_inspects_and_switches_the_mode(world, fans, django_capture_on_commit_callbacks):
    client = token_client(world.manager)
    response = client.post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["mode"] == "mass" and created["stats"]["rejected"] == 0
    url = f"/api/v1/campaigns/{created['id']}"
    assert client.get(url).json()["mode"] == "mass"

    response = client.patch(url, {"mode": "direct", "text": "Hey {fan.first_name|babe}!"}, content_type=JSON)
    assert response.status_code == 200 and response.json()["mode"] == "direct"
    response = client.patch(url, {"name": "Renamed", "mode": None}, content_type=JSON)
    assert response.json()["mode"] == "direct"  # null keeps it
    response = client.patch(url, {"mode": "mass", "text": MASS_TEXT}, content_type=JSON)
    assert response.json()["mode"] == "mass"

    with django_capture_on_commit_callbacks():
        client.post(f"{url}/schedule")
    services.campaign_start(campaign_id=created["id"])
    with django_capture_on_commit_callbacks(execute=True):
        pump(world)
    detail = client.get(url).json()
    assert (detail["stats"]["targeted"], detail["stats"]["sent"], detail["stats"]["percent"]) == (5, 5, 100)
    [item] = client.get(f"{url}/deliveries").json()["items"]
    assert (item["kind"], item["recipient_count"], item["recipient_id"], item["status"]) == ("mass", 5, "", "sent")


def test_api_validation_is_a_400_on_the_field_and_nothing_is_saved(world, fans, settings):
    client = token_client(world.manager)
    response = client.post("/api/v1/campaigns", body(world, fans, text="Hi {fan.name}!"), content_type=JSON)
    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["text"]
    assert "{fan.name} cannot be filled per fan" in error(response)["message"]

    settings.DELIVERY_CONNECTORS = {"onlyfans": NO_MASS}
    response = client.post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 400 and list(error(response)["fields"]) == ["mode"]

    response = client.post("/api/v1/campaigns", body(world, fans, mode="fax"), content_type=JSON)
    assert response.status_code == 422
    assert not Campaign.objects.exists()


def test_api_another_agencys_mass_campaign_is_404_and_a_viewer_cannot_write(world, other_world, fans):
    campaign = mass_campaign(world, fans)
    url = f"/api/v1/campaigns/{campaign.pk}"
    outsider = token_client(other_world.owner)
    assert outsider.get(url).status_code == 404
    assert outsider.get(f"{url}/deliveries").status_code == 404
    assert outsider.patch(url, {"mode": "direct"}, content_type=JSON).status_code == 404
    viewer = token_client(world.owner, scope="read")
    assert viewer.get(url).json()["mode"] == "mass"
    assert viewer.patch(url, {"mode": "direct"}, content_type=JSON).status_code == 403
    campaign.refresh_from_db()
    assert campaign.mode == "mass"


def test_another_agencys_mass_campaign_page_is_404(world, other_world, fans, client_for):
    campaign = mass_campaign(world, fans)
    outsider = client_for(other_world.owner)
    assert outsider.get(reverse("campaigns:detail", args=[campaign.pk])).status_code == 404
    assert outsider.get(reverse("campaigns:edit", args=[campaign.pk])).status_code == 404
