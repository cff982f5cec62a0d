"""The automations journey in Debian's Chromium, against daphne and a Celery worker on the test
database: an owner opens Campaigns → Automations, sets up the PPV follow-up of a creator (a wait
below half an hour is refused on its message, with what was typed kept), switches it on; a fan
leaves a PPV locked; beat's tick (run here, with the clock moved past the wait) sends the
follow-up through the worker, and the owner sees the run done and the message in the fan's
conversation, marked Automation.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

from django.db import connections
from django.utils import timezone

from apps.campaigns.automations import automations_tick
from apps.campaigns.models import AutomationRun
from apps.delivery.models import Delivery
from apps.messaging.models import Message, Source
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey
from tests.messaging.factories import FanFactory, MessageFactory

pytestmark = E2E


def _tick(minutes_later: int) -> dict:
    """Beat's automations tick with the clock moved on, outside Playwright's event-loop thread."""

    def run() -> dict:
        try:
            return automations_tick(now=timezone.now() + timedelta(minutes=minutes_later))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def test_owner_sets_up_a_ppv_follow_up_and_sees_it_sent(server, worker, browser):
    world = build_world("Starlit")
    fan = FanFactory(creator=world.creator, display_name="Walter Whale", username="walterw")

    with Journey.start(browser, server, "automations") as journey:
        page = journey.new_page("owner")
        log_in(page, server, world.owner.user.email)
        page.get_by_role("link", name="Campaigns", exact=True).click()
        page.get_by_role("link", name="Automations").click()
        page.wait_for_url(server + "/campaigns/automations/")
        row = page.locator("section.card", has_text=world.creator.display_name).locator(
            "tr", has_text="Follow up an unbought PPV"
        )
        assert "Off" in row.inner_text()
        journey.step(page, "overview")
        row.get_by_role("link", name="Set up").click()

        # A first wait below half an hour is refused on its message; what was typed stays.
        page.locator("#id_enabled").check()
        page.locator("#id_step1_delay").fill("5")
        page.locator("#id_step1_text").fill("Did you see what I sent you, {fan.first_name|babe}? 😘")
        with journey.expect_status(400, f"/campaigns/automations/{world.creator.pk}/ppv_followup/"):
            page.get_by_role("button", name="Save").click()
            page.get_by_text("wait from 30 minutes").wait_for()
        assert "Did you see what I sent you" in page.locator("#id_step1_text").input_value()
        journey.step(page, "form-error")
        page.locator("#id_step1_delay").fill("60")
        page.locator("#id_step2_delay").fill("")
        page.locator("#id_step2_text").fill("")
        page.get_by_role("button", name="Save").click()
        page.get_by_text("it is on").wait_for()

        # A fan leaves a PPV locked; an hour later the tick sends the follow-up through the worker.
        MessageFactory(
            conversation__fan=fan, conversation__creator=world.creator, conversation__agency=world.agency,
            direction="out", source=Source.HUMAN, status="sent", text="The full set 🔥",
            ppv_price=Decimal("15.00"), media_count=1, sent_at=timezone.now(),
        )  # fmt: skip
        assert _tick(0)["started"] == 1
        assert _tick(61)["sent"] == 1
        deadline = time.monotonic() + 30
        while not Delivery.objects.filter(status="sent", source="campaigns.automation").exists():
            assert time.monotonic() < deadline, "the worker did not send the follow-up"
            time.sleep(0.2)
        assert _tick(62)["recorded"] == 1
        page.reload()
        page.get_by_text("walterw").wait_for()
        assert "All steps sent" in page.locator("table").inner_text()
        journey.step(page, "runs")

        # The fan's conversation shows it, marked Automation.
        conversation = Message.objects.get(fan=fan, source=Source.AUTOMATION).conversation_id
        page.goto(server + f"/inbox/c/{conversation}/")
        page.get_by_text("Did you see what I sent you, Walter?").wait_for()
        assert "Automation" in page.locator("#conversation-history .message.out").last.inner_text()
        journey.step(page, "thread")

    assert AutomationRun.objects.get().status == "done"
