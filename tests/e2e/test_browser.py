"""End to end in Debian's Chromium against a real daphne process on the test database.

A member logs in, sees the dashboard, switches creators with the top-bar switcher, and sees a
live toast when the person they invited joins (the websocket pushes it while the page is open).
"""

from __future__ import annotations

from apps.accounts.models import Invitation
from apps.accounts.selectors import invitation_token
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in

pytestmark = E2E


def test_log_in_switch_creator_and_get_a_live_notification(server, browser):
    world = build_world("Browser")
    owner_page = browser.new_context().new_page()
    log_in(owner_page, server, world.owner.user.email)
    assert owner_page.get_by_role("heading", name="Browser", exact=True).is_visible()
    tile = owner_page.locator(".tile.current h3")
    first = tile.inner_text()

    # The switcher submits on change (JavaScript); the page reloads with the other creator current.
    other = world.other_creator.display_name if world.creator.display_name in first else world.creator.display_name
    owner_page.get_by_label("Creator", exact=True).select_option(label=other)
    owner_page.wait_for_load_state()
    owner_page.locator(".tile.current h3", has_text=other).wait_for()
    assert f"Now working as {other}" in owner_page.locator("#toasts").inner_text()

    # Wait until htmx has opened the notifications websocket before the invitee joins.
    owner_page.wait_for_function("() => document.body['htmx-internal-data']?.webSocket?.socket?.readyState === 1")

    invitation = Invitation.objects.create(
        agency=world.agency, email="browser-invitee@example.com", role="chatter", invited_by=world.owner.user
    )
    guest = browser.new_context().new_page()
    guest.goto(server + f"/invitations/{invitation_token(invitation)}/")
    guest.get_by_label("Your name").fill("Gina Guest")
    guest.get_by_label("Password").fill("a-fresh-passphrase-9")
    guest.get_by_role("button", name="Create account and join").click()
    guest.wait_for_url(server + "/")
    assert "You joined Browser" in guest.locator("#toasts").inner_text()

    toast = owner_page.locator("#toasts .toast", has_text="Gina Guest joined as chatter")
    toast.wait_for(timeout=10_000)
    assert owner_page.locator("#toasts script").count() == 0


def test_forms_work_without_javascript(server, browser):
    world = build_world("NoJS")
    page = browser.new_context(java_script_enabled=False).new_page()
    log_in(page, server, world.manager.user.email)
    page.goto(server + "/settings/creators/new/")
    page.get_by_label("Display name").fill("Plain Form")
    page.get_by_label("Lowest PPV price (USD)").fill("9")
    page.get_by_label("Highest PPV price (USD)").fill("3")
    page.get_by_role("button", name="Add creator").click()
    assert page.get_by_text("The highest PPV price cannot be below the lowest.").is_visible()
    page.get_by_label("Highest PPV price (USD)").fill("30")
    page.get_by_role("button", name="Add creator").click()
    page.wait_for_url(server + "/settings/creators/")
    assert page.get_by_role("link", name="Plain Form").is_visible()


def test_studio_streams_a_generation_into_the_page(server, browser):
    world = build_world("Studio")
    page = browser.new_context().new_page()
    log_in(page, server, world.manager.user.email)
    page.goto(server + "/studio/?type=caption")
    page.wait_for_function(
        "() => document.querySelector('.studio')['htmx-internal-data']?.webSocket?.socket?.readyState === 1"
    )
    page.get_by_label("Variations (1 to 5)").fill("2")
    page.get_by_role("button", name="Generate").click()
    result = page.locator("#studio-result")
    result.get_by_role("button", name="Save to library").wait_for(timeout=15_000)
    assert page.locator("#studio-stream").inner_text().strip() == ""  # the live text gives way to the result
    assert result.locator("ol.results li").count() == 2
    result.get_by_role("button", name="Save to library").click()
    page.get_by_text("Saved to the library.").wait_for()
