"""The weekly content plan as an owner uses it, in Debian's Chromium against daphne and a real
Celery worker on the test database: start it for TikTok from the start form, watch the run page
follow the steps over its websocket to Succeeded, read the DAG's arrows (static/js/workflows.js),
the week's plan, and open a draft to approve it: the schedule form is filled from the draft.

With ``HUNTAZE_SCREENSHOTS=docs/screenshots`` the steps save the pictures docs/journeys.md shows.
"""

from __future__ import annotations

from apps.integrations.models import ScheduledPost
from apps.workflows.models import WorkflowRun
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.e2e.journey import Journey

pytestmark = E2E


def test_owner_plans_a_week_watches_the_dag_and_opens_a_draft_to_approve(server, worker, browser):
    world = build_world("Planner")
    with Journey.start(browser, server, "workflows") as journey:
        page = journey.new_page("owner")
        log_in(page, server, world.owner.user.email)
        page.goto(server + "/workflows/start/")
        page.get_by_label("Workflow").select_option("weekly_content_plan")
        page.get_by_label("Creator (content plan, re-engagement)").select_option(str(world.creator.pk))
        page.get_by_label("Posts to plan (content plan)").fill("2")
        page.get_by_label("Platform (content plan)").select_option("tiktok")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(server + "/workflows/runs/*/")
        run = WorkflowRun.objects.get(agency=world.agency)
        # The page follows the run over its websocket; no reload.
        page.locator("#run-body .wf-state.wf-succeeded").first.wait_for(timeout=60_000)
        page.locator("h2", has_text="The week's plan").wait_for(timeout=60_000)
        edges = page.locator("svg.wf-edges path.wf-edge")
        edges.nth(3).wait_for(state="attached")
        pairs = sorted(
            (edges.nth(i).get_attribute("data-from"), edges.nth(i).get_attribute("data-to"))
            for i in range(edges.count())
        )
        assert pairs == [("captions", "hashtags"), ("hashtags", "plan"), ("ideas", "captions"), ("ideas", "plan")]
        assert edges.first.get_attribute("class") == "wf-edge wf-edge-succeeded"
        journey.step(page, "content-plan-run")

        run.refresh_from_db()
        drafts = ScheduledPost.objects.filter(creator=world.creator, status="draft").order_by("scheduled_at")
        assert drafts.count() == len(run.output["plan"]["posts"]) >= 1
        page.get_by_role("link", name="Review and approve").first.click()
        page.wait_for_url(server + f"/integrations/posts/{drafts[0].pk}/")
        assert page.locator(".status-draft", has_text="Awaiting approval").count() == 1
        page.get_by_role("link", name="Approve and schedule…").click()
        page.get_by_role("heading", name=f"Approve the draft for {world.creator.display_name}").wait_for()
        assert page.get_by_label("Caption").input_value() == drafts[0].caption
        journey.step(page, "content-plan-approve")
