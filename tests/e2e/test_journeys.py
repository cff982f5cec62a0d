"""User journeys in Debian's Chromium: the product used end to end as its users use it, against a
daphne server and a Celery worker on the test database, emails read from the test mailbox.

Every step fails on a console error, an uncaught exception, a failed request or an unexpected
4xx/5xx (``Journey``), and saves a screenshot under docs/screenshots/ with ``make screenshots``;
docs/journeys.md shows each step. A journey for each new part of the product (inbox, campaigns,
monitoring) joins this file with the part.
"""

from __future__ import annotations

import pytest

from apps.accounts.models import Creator
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey, JourneyError

pytestmark = E2E

OWNER = "ines.owner@journey.example"
CHATTER = "cole.chatter@journey.example"
PASSWORD = "moonlit-harbour-7291"


def add_creator(page, base: str, name: str, niche: str, persona: str) -> None:
    page.goto(base + "/settings/creators/new/")
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Niche").fill(niche)
    page.get_by_label("Persona").fill(persona)
    page.get_by_label("Voice description").fill("Warm, playful, short sentences, a wink now and then.")
    page.get_by_role("button", name="Add creator").click()
    page.wait_for_url(base + "/settings/creators/")
    page.get_by_role("link", name=name).wait_for()


def test_owner_signs_up_builds_a_team_and_a_chatter_sees_only_their_creator(server, worker, browser, mailbox):
    with Journey.start(browser, server, "team") as journey:
        owner = journey.new_page("owner")

        # Sign up: a new agency with its owner; the verification email goes out through the worker.
        owner.goto(server + "/accounts/signup/")
        owner.get_by_label("Your name").fill("Ines Moreau")
        owner.get_by_label("Email").fill(OWNER)
        owner.get_by_label("Password").fill(PASSWORD)
        owner.get_by_label("Agency or creator business name").fill("Moonlight Talent")
        journey.step(owner, "sign-up")
        owner.get_by_role("button", name="Create account").click()
        owner.wait_for_url(server + "/settings/creators/new/")
        assert owner.locator("#verify-banner").is_visible()  # cannot invite before confirming the address
        journey.step(owner)

        # Verify the address with the link from the test mailbox.
        owner.goto(mailbox.link(to=OWNER, subject="Confirm your email", path="/accounts/verify/"))
        owner.get_by_role("heading", name="Email address confirmed").wait_for()
        assert owner.locator("#verify-banner").count() == 0
        journey.step(owner, "email-confirmed")

        # Two creators; the chatter will be assigned only the first.
        add_creator(owner, server, "Luna Vale", "cosplay", "Cosplayer who loves fantasy armour and late-night streams.")
        add_creator(owner, server, "Nova Reyes", "fitness", "Trainer sharing morning routines and gym humour.")
        owner.get_by_text("Nova Reyes added.").wait_for()
        journey.step(owner, "creators")

        # Stream a caption for Luna over the studio websocket, then save it to the library.
        owner.goto(server + "/")
        owner.get_by_role("button", name="Work as Luna Vale").click()
        owner.locator(".tile.current h3", has_text="Luna Vale").wait_for()
        journey.step(owner)
        owner.goto(server + "/studio/?type=caption")
        owner.wait_for_function(
            "() => document.querySelector('.studio')['htmx-internal-data']?.webSocket?.socket?.readyState === 1"
        )
        owner.get_by_label("What is the content? (optional)").fill("New elven armour set, first try-on")
        owner.get_by_label("Variations (1 to 5)").fill("3")
        owner.get_by_role("button", name="Generate").click()
        result = owner.locator("#studio-result")
        result.get_by_role("button", name="Save to library").wait_for()
        assert result.locator("ol.results li").count() == 3
        journey.step(owner)
        result.get_by_role("button", name="Save to library").click()
        owner.get_by_text("Saved to the library.").wait_for()
        journey.step(owner, "caption")

        # Invite a chatter by email.
        owner.get_by_role("link", name="Team").click()
        owner.get_by_label("Email").fill(CHATTER)
        owner.get_by_label("Role").select_option("chatter")
        owner.get_by_role("button", name="Send invitation").click()
        owner.get_by_text(f"Invitation sent to {CHATTER}.").wait_for()
        journey.step(owner, "invitation-sent")

        # The chatter opens the link from the mailbox and creates an account.
        chatter = journey.new_page("chatter")
        chatter.goto(mailbox.link(to=CHATTER, subject="invited to join Moonlight Talent", path="/invitations/"))
        chatter.get_by_role("heading", name="Join Moonlight Talent").wait_for()
        chatter.get_by_label("Your name").fill("Cole Martin")
        chatter.get_by_label("Password").fill("quiet-lantern-4417")
        journey.step(chatter, "invitation")
        chatter.get_by_role("button", name="Create account and join").click()
        chatter.wait_for_url(server + "/")
        chatter.get_by_text("No creators are assigned to you yet.").wait_for()
        journey.step(chatter)
        chatter.get_by_role("button", name="Log out").click()
        chatter.wait_for_url(server + "/accounts/login/")

        # The owner assigns Luna to the chatter on the members page.
        owner.goto(server + "/settings/members/")
        owner.locator("tr", has_text=CHATTER).get_by_role("link", name="Edit").click()
        owner.get_by_label("Luna Vale").check()
        owner.get_by_role("button", name="Save assignments").click()
        owner.get_by_text("Assignments for").wait_for()
        journey.step(owner)
        owner.goto(server + "/settings/members/")
        owner.locator("tr", has_text=CHATTER).get_by_text("Luna Vale").wait_for()
        journey.step(owner, "team")

        # The chatter logs in and sees Luna, and only Luna: not on the dashboard, not in the
        # switcher, not in the creator list, and Nova's page answers 404.
        log_in(chatter, server, CHATTER, "quiet-lantern-4417")
        chatter.locator(".tile h3", has_text="Luna Vale").wait_for()
        assert chatter.locator(".tile").count() == 1
        assert chatter.get_by_label("Creator", exact=True).locator("option").all_inner_texts() == ["Luna Vale"]
        journey.step(chatter, "chatter-dashboard")
        chatter.goto(server + "/settings/creators/")
        assert chatter.get_by_role("link", name="Luna Vale").is_visible()
        assert chatter.get_by_text("Nova Reyes").count() == 0
        journey.step(chatter)
        nova = Creator.objects.get(display_name="Nova Reyes")
        with journey.expect_status(404, f"/settings/creators/{nova.pk}/"):
            response = chatter.goto(server + f"/settings/creators/{nova.pk}/")
        assert response.status == 404


def test_a_journey_fails_on_console_errors_failed_requests_and_error_statuses(server, browser):
    journey = Journey.start(browser, server, "self-test")
    page = journey.new_page("tester")
    page.goto(server + "/accounts/login/")
    # A request the page cancels itself (as a navigation does to a favicon in flight) is no problem.
    page.evaluate(
        "const c = new AbortController(); fetch('/accounts/login/', {signal: c.signal}).catch(() => null); c.abort()"
    )
    page.wait_for_timeout(200)
    journey.check()  # a healthy page passes

    page.evaluate("console.error('boom from the page')")
    page.evaluate("fetch('/no-such-page/')")
    page.route(server + "/static/lost.js", lambda route: route.abort("connectionrefused"))
    page.evaluate("fetch('/static/lost.js').catch(() => null)")  # the network drops it
    page.evaluate("setTimeout(() => { throw new Error('uncaught kaboom'); })")
    page.wait_for_timeout(500)
    with pytest.raises(JourneyError) as failure:
        journey.check()
    report = str(failure.value)
    assert "console error: boom from the page" in report
    assert f"HTTP 404: GET {server}/no-such-page/" in report
    assert f"request failed: GET {server}/static/lost.js (net::ERR_CONNECTION_REFUSED)" in report
    assert "uncaught error" in report and "uncaught kaboom" in report

    # A declared status passes; one that never comes fails.
    with journey.expect_status(404, "/no-such-page/"):
        page.goto(server + "/no-such-page/")
    journey.check()
    with pytest.raises(JourneyError, match="never came"), journey.expect_status(404, "/accounts/login/"):
        page.goto(server + "/accounts/login/")
