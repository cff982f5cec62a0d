"""The campaigns journey in Debian's Chromium, against daphne and a Celery worker on the test
database: an owner writes a campaign to a segment (a wrong PPV price is a form error that keeps
what was typed), checks the preview as three fans will read it, sends it now, watches the
progress panel move over the websocket while the worker's account pump sends, sees it completed,
and finds the message in a fan's conversation.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from apps.campaigns import services
from apps.campaigns.models import Campaign, CampaignStatus
from apps.messaging.models import Message
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey
from tests.messaging.factories import FanFactory, SegmentFactory

pytestmark = E2E


def _tick() -> dict:
    """Beat's campaigns tick, run outside Playwright's event-loop thread."""

    def run() -> dict:
        try:
            return services.campaigns_tick()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def test_owner_sends_a_campaign_to_a_segment_and_watches_it_go_out(server, worker, browser):
    world = build_world("Moonlit")
    names = ["Walter Whale", "Mia Kay", "Noah <b>Bold</b>", "Iris Moon", "Leo Sun", "Ava Star"]
    fans = [FanFactory(creator=world.creator, display_name=name, username=f"fan{i}") for i, name in enumerate(names)]
    FanFactory(creator=world.other_creator, display_name="Hidden Hugo")
    segment = SegmentFactory(agency=world.agency, creator=world.creator, name="Everyone of Moonlit Star", filters={})

    with Journey.start(browser, server, "campaigns") as journey:
        page = journey.new_page("owner")
        log_in(page, server, world.owner.user.email)
        page.get_by_role("link", name="Campaigns", exact=True).click()
        page.wait_for_url(server + "/campaigns/")
        page.get_by_text("No campaigns yet.").wait_for()
        page.get_by_role("link", name="New campaign").click()

        # The form: a PPV price outside the creator's range is refused, and nothing typed is lost.
        page.locator("#id_name").fill("Friday night drop")
        page.locator("#id_creator").select_option(label=world.creator.display_name)
        page.locator("#id_segment").select_option(label=f"{segment.name} ({world.creator.display_name})")
        page.locator("#id_text").fill("Hey {fan.first_name|babe}, my new set is out tonight 🔥")
        page.locator("#id_ppv_price").fill("0.50")
        page.locator("#id_media").fill("vault-123")
        with journey.expect_status(400, "/campaigns/new/"):
            page.get_by_role("button", name="Save draft and preview").click()
            page.get_by_text("PPV prices go from").wait_for()
        assert page.locator("#id_name").input_value() == "Friday night drop"
        journey.step(page, "form-error")
        page.locator("#id_ppv_price").fill("12.00")
        page.get_by_role("button", name="Save draft and preview").click()

        # The preview: six fans, the message as the first three read it (a fan's name escaped).
        page.get_by_text("fans would get it now").wait_for()
        preview = page.locator("#campaign-preview")
        assert "6 fans would get it now" in preview.inner_text()
        assert "Hey Walter, my new set is out tonight" in preview.inner_text()
        assert "Hey Noah" in preview.inner_text() and preview.locator("b").count() == 0
        journey.step(page, "preview")

        # Send now: the worker starts it and the account's pump sends; the panel follows live.
        page.get_by_role("button", name="Send now to 6 fans").click()
        page.get_by_text("Sending now.").wait_for()
        page.locator("#campaign-progress").get_by_text("Sent").first.wait_for()
        page.wait_for_function(
            "() => /Sent\\s*6/.test(document.querySelector('#campaign-progress')?.innerText || '')", timeout=60_000
        )
        journey.step(page, "progress")

        # Beat's tick completes it (and puts the messages into the threads); the panel says so.
        assert _tick()["completed"] == 1
        page.locator("#campaign-progress").get_by_text("Completed").wait_for(timeout=10_000)
        assert page.get_by_role("button", name="Pause").count() == 0
        journey.step(page, "completed")

        # The fan's conversation shows what the campaign said.
        conversation = Message.objects.get(fan=fans[0], campaign_id__isnull=False).conversation_id
        page.goto(server + f"/inbox/c/{conversation}/")
        page.get_by_text("Hey Walter, my new set is out tonight").wait_for()
        assert "Campaign" in page.locator("#conversation-history .message.out").last.inner_text()
        journey.step(page, "thread")

    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.targeted) == (CampaignStatus.COMPLETED, 6)
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 6
