"""The optimization journey in Debian's Chromium, against daphne on the test database: an owner
whose creators have a season of results, offers, posts and mass-message sends opens
Optimization, reads the PPV price advice with its demand curve and the best times as heat maps
in the creator's timezone, tries another strategy (the pricing card re-renders in place), sees
the day the tips jumped flagged on the chart, accepts one recommendation and dismisses another
with a reason (each card updates in place and the decision survives a reload), acknowledges the
anomaly on the anomalies page, and finds a viewer sees the same advice without the buttons.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from apps.optimization import services
from apps.optimization.models import Anomaly, Recommendation
from tests.accounts.factories import MembershipFactory
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey
from tests.optimization.factories import add_daily, add_hourly, add_offers, add_posts

pytestmark = E2E


def _nightly(agency_id: int):
    """The nightly job, run outside Playwright's event-loop thread (it pushes notifications)."""

    def run():
        try:
            return services.run_nightly(agency_id=agency_id)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def test_owner_reads_the_advice_decides_on_it_and_a_viewer_sees_it_read_only(server, browser):
    world = build_world("Sunset")
    world.creator.timezone = "Asia/Kathmandu"
    world.creator.save(update_fields=["timezone"])
    for index, creator in enumerate((world.creator, world.other_creator)):
        add_daily(creator, days=200, spike_days_ago=4, spike=10, seed=index)
        add_offers(creator, seed=index + 3)
        add_posts(creator, best_hour=21)
        add_hourly(creator, best_hour=20)
    report = _nightly(world.agency.pk)
    assert report.recommendations_created >= 4 and report.anomalies_stored >= 1
    viewer = MembershipFactory(agency=world.agency, role="viewer")

    with Journey.start(browser, server, "optimization") as journey:
        page = journey.new_page("owner")
        log_in(page, server, world.owner.user.email)
        page.get_by_role("link", name="Optimization", exact=True).click()
        page.locator("#opt-creator").select_option(label=world.creator.display_name)
        page.wait_for_url(f"**/optimization/?creator={world.creator.pk}")

        # Pricing: a price in words, with the demand curve; best times in the creator's zone.
        pricing = page.locator("#pricing-card")
        assert "$" in pricing.locator(".headline").inner_text()
        assert pricing.locator("svg.chart circle").count() >= 5  # the creator's own offers
        assert page.get_by_text("Asia/Kathmandu time").count() >= 1
        journey.step(page, "overview")

        # Another strategy: the card re-renders in place (no navigation), and says so.
        before = pricing.locator("li.muted").inner_text()
        page.locator("#id_strategy").select_option("conversion_max")
        page.get_by_text("most unlocks strategy").first.wait_for()
        assert page.url.endswith(f"/optimization/?creator={world.creator.pk}")
        assert pricing.locator("li.muted").inner_text() != before

        # The day the tips jumped is on the chart when the series is tips.
        page.locator("#opt-metric").select_option("revenue_tips")
        page.locator("#anomaly-card svg circle").first.wait_for()
        journey.step(page, "anomaly")

        # Accept one recommendation and dismiss another, each in place.
        cards = page.locator("article.rec")
        first_id = cards.nth(0).get_attribute("id")
        second_id = cards.nth(1).get_attribute("id")
        page.locator(f"#{first_id}").get_by_role("button", name="Accept").click()
        page.locator(f"#{first_id}").get_by_text("Accepted by").wait_for()
        page.locator(f"#{second_id} input[name=reason]").fill("We tried <b>that</b> in May")
        page.locator(f"#{second_id}").get_by_role("button", name="Dismiss").click()
        page.locator(f"#{second_id}").get_by_text("We tried <b>that</b> in May").wait_for()
        journey.step(page, "decided")
        page.reload()
        assert page.locator(f"#{first_id}").count() == 0  # open recommendations only
        decided = dict(
            Recommendation.objects.filter(pk__in=[int(first_id[4:]), int(second_id[4:])]).values_list("pk", "status")
        )
        assert decided == {int(first_id[4:]): "accepted", int(second_id[4:]): "dismissed"}

        # The anomalies page: acknowledge the flagged day.
        page.get_by_role("link", name="Anomalies", exact=True).click()
        page.wait_for_url("**/optimization/anomalies/")
        row = page.locator("tr", has=page.get_by_role("button", name="Acknowledge")).first
        row_id = row.get_attribute("id")
        row.get_by_role("button", name="Acknowledge").click()
        page.locator(f"#{row_id}").get_by_text("Acknowledged by").wait_for()
        assert Anomaly.objects.filter(status="acknowledged").count() == 1
        journey.step(page, "anomalies")

        # A viewer reads the same advice, without the buttons.
        viewer_page = journey.new_page("viewer")
        log_in(viewer_page, server, viewer.user.email)
        viewer_page.goto(f"{server}/optimization/?creator={world.creator.pk}")
        viewer_page.get_by_text("Owners and managers accept or dismiss recommendations").first.wait_for()
        assert viewer_page.get_by_role("button", name="Accept").count() == 0
