"""The inbox journey in Debian's Chromium, against daphne and a Celery worker on the test database:
a chatter opens the inbox (only their creator's fans, most urgent first), looks up the shortcuts,
opens the top conversation with the keyboard, asks for AI drafts (streamed over the inbox
websocket), uses one, edits it and sends it with Ctrl+Enter; the worker delivers it and the page
shows it sent without a reload.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.db import connections

from apps.messaging import services
from apps.messaging.models import Message, Source
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey
from tests.messaging.factories import FanFactory, TemplateFactory

pytestmark = E2E

SOCKET_OPEN = "() => document.querySelector('.inbox-page')?.dataset.socket === 'open'"


def _fans(world) -> None:
    walter = FanFactory(creator=world.creator, username="walter_w", display_name="Walter Whale")
    services.purchase_record(fan=walter, kind="tip", amount=Decimal("650.00"))
    services.message_receive(fan=walter, text="Did you get my tip? Would love something special tonight 😘")
    mia = FanFactory(creator=world.creator, username="mia.k", display_name="Mia Kay")
    services.message_receive(fan=mia, text="hey! new here, what do you post?")
    hugo = FanFactory(creator=world.other_creator, username="hugo_h", display_name="Hidden Hugo")
    services.purchase_record(fan=hugo, kind="tip", amount=Decimal("900.00"))
    services.message_receive(fan=hugo, text="not for this chatter")


def _in_a_thread(function, *args) -> None:
    """Run ingest outside this thread: Playwright's event loop runs here, and the services publish
    their inbox events with async_to_sync, which refuses a thread with a running loop."""

    def run() -> None:
        try:
            function(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def test_chatter_answers_the_top_fan_with_an_edited_ai_draft(server, worker, browser):
    world = build_world("Moonlit")
    world.chatter.user.full_name = "Cole Martin"
    world.chatter.user.save()
    _in_a_thread(_fans, world)
    TemplateFactory(
        agency=world.agency, name="Thanks for the tip", text="Thank you {fan.first_name|babe}, you spoil me!"
    )

    with Journey.start(browser, server, "inbox") as journey:
        page = journey.new_page("chatter")
        log_in(page, server, world.chatter.user.email)

        # The inbox: the whale who is waiting comes first; the unassigned creator's fan is absent.
        page.get_by_role("link", name="Inbox", exact=True).click()
        page.wait_for_url(server + "/inbox/")
        page.wait_for_function(SOCKET_OPEN)
        rows = page.locator("[data-conversation-row]")
        assert rows.count() == 2
        assert "Walter Whale" in rows.nth(0).inner_text()
        assert rows.nth(0).locator(".badge").first.inner_text() == "Whale"
        assert "waiting" in rows.nth(0).inner_text()
        assert "Hidden Hugo" not in page.content()
        journey.step(page, "list")

        # ? opens the shortcuts dialog; Escape closes it.
        page.keyboard.press("?")
        dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
        dialog.wait_for()
        assert "Next conversation" in dialog.inner_text()
        journey.step(page, "shortcuts")
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")

        # j selects the top conversation, Enter opens it.
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(server + f"/inbox/c/{walter_conversation(world)}/")
        page.wait_for_function(SOCKET_OPEN)
        page.get_by_text("Did you get my tip?").wait_for()
        assert page.locator(".fan-sidebar").get_by_text("650.00 USD").first.is_visible()
        journey.step(page, "conversation")

        # Choosing a template fills the composer with it, rendered for Walter; nothing is sent.
        page.get_by_label("Template").select_option(label="Thanks for the tip")
        page.wait_for_function("() => document.querySelector('#composer-text').value.startsWith('Thank you Walter')")
        assert not Message.objects.filter(direction="out").exists()

        # Three drafts stream in; each shows its score and factors.
        page.get_by_role("button", name="Suggest replies").click()
        cards = page.locator("#draft-cards [data-use-draft]")
        cards.first.wait_for(timeout=30_000)
        page.locator(".draft-card.streaming").first.wait_for(state="detached", timeout=30_000)
        assert page.locator("#draft-cards .draft-card").count() == 3
        assert "Personalization" in page.locator("#draft-cards .draft-card").first.inner_text()
        journey.step(page, "drafts")

        # a puts the first draft in the composer; the chatter edits it and sends with Ctrl+Enter.
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("a")
        composer = page.get_by_label("Message")
        draft_text = composer.input_value()
        assert draft_text
        composer.press("End")
        composer.type(" See you tonight x")
        page.keyboard.press("Control+Enter")

        # The worker delivers it; the page shows it sent without a reload.
        sent = page.locator("#conversation-history .message.out").last
        sent.get_by_text("See you tonight x").wait_for()
        sent.locator(".status-sent").wait_for(timeout=30_000)
        assert "AI draft" in sent.inner_text() and "Cole" in sent.inner_text()
        assert page.get_by_label("Message").input_value() == ""
        journey.step(page, "sent")

    message = Message.objects.get(direction="out")
    assert message.source == Source.AI_DRAFT
    assert message.text.endswith("See you tonight x") and message.suggested_text == draft_text
    assert 0 < message.edit_ratio < 1
    assert message.sent_by == world.chatter.user


def walter_conversation(world) -> int:
    return Message.objects.get(fan__username="walter_w").conversation_id
