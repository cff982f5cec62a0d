"""The monitoring journeys in Debian's Chromium against daphne on the test database.

An operator (a staff user) opens Monitoring: the requests they just made are in the route table
under their URL patterns, an SLO with an objective of 100 is refused on its field with what was
typed kept, then saved at 99.5; a webhook to a malformed URL is refused. An owner opens AI cost
with a month of ledger history: the daily chart, the forecast and the savings advice; a budget
of 0 is refused on its field, a budget of $5 with a hard stop is saved and its gauge shows the
month's spend.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.monitoring.models import SLO, Budget
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey

pytestmark = E2E


def test_operator_reads_the_overview_and_sets_an_slo(server, browser):
    world = build_world("Ops")
    operator = world.viewer.user
    operator.is_staff = True
    operator.save(update_fields=["is_staff"])

    with Journey.start(browser, server, "monitoring") as journey:
        page = journey.new_page("operator")
        log_in(page, server, operator.email)
        page.goto(server + "/campaigns/")
        page.goto(server + "/inbox/")
        # daphne's flush thread writes the requests' metrics every METRICS_FLUSH_SECONDS (1 s here).
        deadline = time.monotonic() + 20
        while True:
            page.get_by_role("link", name="Monitoring").click()
            page.wait_for_url(server + "/monitoring/")
            if (
                page.locator("section[aria-labelledby=api-routes-title] td", has_text="/campaigns/").count()
                or time.monotonic() > deadline
            ):
                break
            time.sleep(1)
        assert page.locator("section[aria-labelledby=api-routes-title] td", has_text="/campaigns/").count() == 1
        journey.step(page, "overview")

        page.get_by_role("link", name="New SLO").click()
        page.get_by_label("Name").fill("Inbox API availability")
        page.get_by_label("Indicator").select_option("api_availability")
        page.get_by_label("Objective (%)").fill("100")
        with journey.expect_status(400, "/monitoring/slos/new/"):
            page.get_by_role("button", name="Save").click()
            page.locator(".errorlist", has_text="strictly between 0 and 100").wait_for()
        assert page.get_by_label("Name").input_value() == "Inbox API availability"
        journey.step(page, "slo-error")
        page.get_by_label("Objective (%)").fill("99.5")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(server + "/monitoring/")
        assert page.locator("tr", has_text="Inbox API availability").count() == 1
        assert SLO.objects.get(name="Inbox API availability").objective == Decimal("99.5")

        page.get_by_role("link", name="Webhooks").click()
        page.get_by_label("URL").fill("not a url")
        with journey.expect_status(400, "/monitoring/webhooks/"):
            page.get_by_role("button", name="Add webhook").click()
            page.get_by_text("Enter a valid URL").wait_for()
        journey.step(page, "webhook-error")


def test_owner_reads_ai_cost_and_sets_a_budget(server, browser):
    world = build_world("Spendy")
    now = timezone.now()
    AIRequestLog.objects.bulk_create(
        AIRequestLog(
            agency=world.agency, creator=world.creator if day % 2 else world.other_creator,
            feature="studio.caption" if day % 3 else "inbox.reply", provider="openai",
            model="gpt-4o" if day % 3 else "gpt-4o-mini", input_tokens=1500, output_tokens=250,
            cost_usd=Decimal("0.40") if day % 3 else Decimal("0.05"), latency_ms=900, attempts=1,
            created_at=now - timedelta(days=day, hours=1),
        )
        for day in range(0, 20)
    )  # fmt: skip

    with Journey.start(browser, server, "ai-cost") as journey:
        page = journey.new_page("owner")
        log_in(page, server, world.owner.user.email)
        page.get_by_role("link", name="AI cost", exact=True).click()
        page.wait_for_url(server + "/monitoring/cost/")
        page.get_by_text("Daily spend by provider").wait_for()
        assert page.locator("svg").count() >= 2  # the daily chart and the forecast band
        journey.step(page, "dashboard")

        page.get_by_role("link", name="New budget").click()
        page.get_by_label("Monthly budget (USD)").fill("0")
        with journey.expect_status(400, "/monitoring/cost/budgets/new/"):
            page.get_by_role("button", name="Save budget").click()
            page.locator(".errorlist").first.wait_for()
        journey.step(page, "budget-error")
        page.get_by_label("Monthly budget (USD)").fill("5")
        page.get_by_label("Hard stop: refuse AI requests once the budget is used up").check()
        page.get_by_role("button", name="Save budget").click()
        page.wait_for_url(server + "/monitoring/cost/**")
        budget = Budget.objects.get(agency=world.agency)
        assert budget.monthly_usd == Decimal("5.00") and budget.hard_stop
        assert page.get_by_text("of $5.00").count() >= 1
        journey.step(page, "budget")
