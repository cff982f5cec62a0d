"""The built-in workflows, run step by step in this process (``engine.drive``) on real services:
the nightly optimization, the month-end AI cost report with its notifications, and the weekly
content plan through the studio (the built-in offline writer, and the loopback OpenAI fake with
the provider down: the plan degrades instead of failing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.integrations.models import ScheduledPost
from apps.notifications.models import Notification
from apps.studio.models import Generation
from apps.workflows import engine, services
from apps.workflows.models import RunState, StepRun, StepState

pytestmark = pytest.mark.django_db


def test_nightly_optimization_runs_the_optimization_service_and_notifies_only_when_it_found_something(world):
    run = engine.drive(services.run_start(membership=world.owner, workflow="nightly_optimization").pk)
    assert run.state == RunState.SUCCEEDED, run.error
    optimize = StepRun.objects.get(run=run, step="optimize")
    assert optimize.output["creators"] == 2  # both creators of the agency went through the nightly run
    assert StepRun.objects.get(run=run, step="notify").state == StepState.SKIPPED  # nothing new without data
    assert not Notification.objects.filter(agency=world.agency).exists()


def test_month_end_cost_report_stores_the_report_and_notifies_owners_and_managers(world):
    AIRequestLog.objects.create(
        agency=world.agency, creator=world.creator, provider="openai", model="gpt-4o-mini", feature="studio",
        cost_usd=Decimal("1.25"), created_at=timezone.now().replace(day=1, hour=1),
    )  # fmt: skip
    month = f"{timezone.now():%Y-%m}"
    run = engine.drive(services.run_start(membership=world.owner, workflow="month_end_cost_report",
                                          data={"month": month}).pk)  # fmt: skip
    assert run.state == RunState.SUCCEEDED, run.error
    report = run.output["notify"]["report"]
    assert report["month"] == month and Decimal(report["total_usd"]) == Decimal("1.25") and report["calls"] == 1
    assert report["providers"][0]["label"] and report["creators"][0]["label"] == world.creator.display_name
    notified = set(Notification.objects.filter(agency=world.agency).values_list("user_id", flat=True))
    assert notified == {world.owner.user_id, world.manager.user_id}
    assert "$1.25" in Notification.objects.filter(user=world.owner.user).get().body


def test_month_end_cost_report_defaults_to_last_month_and_refuses_a_future_one(world):
    from apps.core.errors import ApplicationError

    run = services.run_start(membership=world.owner, workflow="month_end_cost_report")
    last = (timezone.now().date().replace(day=1) - timezone.timedelta(days=1)).strftime("%Y-%m")
    assert run.input == {"month": last}
    with pytest.raises(ApplicationError, match="has not started yet"):
        services.run_start(membership=world.owner, workflow="month_end_cost_report", data={"month": "2999-01"})


def test_weekly_content_plan_with_the_offline_writer(world, builtin):
    run = services.run_start(membership=world.owner, workflow="weekly_content_plan",
                             data={"creator_id": world.creator.pk, "ideas": 3})  # fmt: skip
    run = engine.drive(run.pk)
    assert run.state == RunState.SUCCEEDED, run.error
    plan = run.output["plan"]
    posts = plan["posts"]
    ideas = run.output and StepRun.objects.get(run=run, step="ideas").output["ideas"]
    assert plan["degraded"] is False and 1 <= len(posts) == len(ideas) <= 3  # near-duplicate ideas are dropped
    tomorrow = timezone.localtime(timezone.now(), ZoneInfo(world.creator.timezone)).date() + timedelta(days=1)
    days = [tomorrow + timedelta(days=offset) for offset in range(len(posts))]
    assert [post["date"] for post in posts] == [day.isoformat() for day in days]  # a post a day from tomorrow
    assert [post["day"] for post in posts] == [f"{day:%A}" for day in days]
    assert all(post["caption"] and post["hashtags"] and post["idea"]["title"] for post in posts)
    assert StepRun.objects.filter(run=run, step="captions").count() == len(posts)  # one caption step per idea
    saved = Generation.objects.filter(agency=world.agency, type="caption", saved=True).count()
    assert saved == len(posts)  # the captions wait in the studio library
    # OnlyFans has no publishing API: no drafts, and the plan says where the captions went.
    assert not ScheduledPost.objects.exists()
    assert plan["summary"] == "Huntaze does not publish OnlyFans posts: the captions wait in the studio library."


def test_weekly_content_plan_drafts_the_week_at_the_creators_best_hour_for_approval(world, builtin, client_for):
    from tests.optimization.factories import add_posts

    world.creator.timezone = "America/St_Johns"  # UTC-3:30, with daylight saving
    world.creator.save(update_fields=["timezone"])
    add_posts(world.creator, best_hour=13, days=60)  # the timing model's known answer: 13:00 local
    run = engine.drive(services.run_start(membership=world.owner, workflow="weekly_content_plan",
                                          data={"creator_id": world.creator.pk, "ideas": 3,
                                                "platform": "tiktok"}).pk)  # fmt: skip
    assert run.state == RunState.SUCCEEDED, run.error
    posts = run.output["plan"]["posts"]
    drafts = list(ScheduledPost.objects.filter(creator=world.creator).order_by("scheduled_at"))
    assert [draft.pk for draft in drafts] == [post["draft_id"] for post in posts]
    waiting = "1 TikTok draft awaits" if len(drafts) == 1 else f"{len(drafts)} TikTok drafts await"
    assert run.output["plan"]["summary"].startswith(f"{waiting} approval on the publishing calendar")
    zone = ZoneInfo("America/St_Johns")
    for post, draft in zip(posts, drafts, strict=True):
        local = draft.scheduled_at.astimezone(zone)
        assert draft.status == "draft" and draft.platform == "tiktok" and draft.connection_id is None
        assert (local.hour, local.minute) == (13, 0) and local.date().isoformat() == post["date"]
        assert draft.caption.startswith(post["caption"]) and all(tag in draft.caption for tag in post["hashtags"])
        assert draft.generation_id == post["generation_id"]
    page = client_for(world.owner).get(f"/workflows/runs/{run.pk}/").content.decode()
    assert "<h2>The week's plan</h2>" in page
    assert f'href="/integrations/posts/{drafts[0].pk}/"' in page and "Review and approve" in page


def test_weekly_content_plan_for_reddit_drafts_titles_without_hashtags(world, builtin):
    run = engine.drive(services.run_start(membership=world.owner, workflow="weekly_content_plan",
                                          data={"creator_id": world.creator.pk, "ideas": 2,
                                                "platform": "reddit"}).pk)  # fmt: skip
    assert run.state == RunState.SUCCEEDED, run.error
    posts = run.output["plan"]["posts"]
    drafts = list(ScheduledPost.objects.filter(creator=world.creator, platform="reddit").order_by("scheduled_at"))
    assert len(drafts) == len(posts) >= 1 and all(post["hashtags"] == [] for post in posts)  # Reddit takes none
    assert [draft.title for draft in drafts] == [post["caption"] for post in posts]  # the studio wrote titles
    assert all(draft.status == "draft" and draft.caption == "" for draft in drafts)


def test_a_plan_step_run_again_brings_back_no_draft_a_member_discarded(world, builtin):
    from apps.integrations import publishing

    run = engine.drive(services.run_start(membership=world.owner, workflow="weekly_content_plan",
                                          data={"creator_id": world.creator.pk, "ideas": 3,
                                                "platform": "instagram"}).pk)  # fmt: skip
    drafts = list(ScheduledPost.objects.filter(creator=world.creator).order_by("scheduled_at"))
    assert run.state == RunState.SUCCEEDED and len(drafts) >= 2
    publishing.post_cancel(membership=world.owner, post=drafts[0])  # a member discarded the first day
    # The worker that ran the plan step died before recording it: its claim expires, recovery runs it again.
    run.__class__.objects.filter(pk=run.pk).update(state=RunState.RUNNING, output=None, finished_at=None)
    StepRun.objects.filter(run=run, step="plan").update(
        state=StepState.RUNNING, output=None, claimed_by="dead-worker:1",
        claim_expires_at=timezone.now() - timedelta(seconds=5),
    )  # fmt: skip
    assert engine.recover()["requeued"] == 1
    run = engine.drive(run.pk)
    assert run.state == RunState.SUCCEEDED, run.error
    assert ScheduledPost.objects.filter(creator=world.creator).count() == len(drafts)  # nothing drafted twice
    posts = run.output["plan"]["posts"]
    assert posts[0]["draft_id"] == drafts[0].pk and posts[0]["draft_status"] == "cancelled"
    waiting = len(drafts) - 1
    assert run.output["plan"]["drafts"] == waiting
    assert run.output["plan"]["summary"].startswith(f"{waiting} Instagram draft")


def test_a_best_hour_lost_to_spring_forward_is_planned_at_the_hour_that_exists(world):
    from datetime import date

    from apps.workflows.workflows import _plan_times
    from tests.optimization.factories import add_posts

    world.creator.timezone = "America/New_York"  # 2026-03-08: 02:00 jumps to 03:00
    world.creator.save(update_fields=["timezone"])
    add_posts(world.creator, best_hour=2, hours=(2, 9, 13, 21), days=60)  # 02:00 is the best hour every day
    sunday, monday = _plan_times(world.creator, 2, today=date(2026, 3, 7))
    zone = ZoneInfo("America/New_York")
    assert sunday.isoformat() == "2026-03-08T03:00:00-04:00"  # what the draft and the plan table both say
    assert sunday == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert monday.astimezone(zone).hour == 2 and monday.date() == date(2026, 3, 9)


def test_a_plan_caption_keeps_only_the_hashtags_that_fit():
    from apps.integrations.publishing import caption_with_hashtags

    caption = "x" * 2190
    assert caption_with_hashtags("tiktok", caption, ["#one", "#twelveletters", "#two"]) == caption + " #one"
    assert caption_with_hashtags("instagram", "#a " * 29, ["#b", "#c"]).count("#") == 30  # Instagram's 30


def test_weekly_content_plan_refuses_an_unknown_platform(world):
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="Choose one of: onlyfans"):
        services.run_start(membership=world.owner, workflow="weekly_content_plan",
                           data={"creator_id": world.creator.pk, "platform": "myspace"})  # fmt: skip


def test_weekly_content_plan_refuses_another_agencys_creator(world, other_world):
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="Choose one of your creators"):
        services.run_start(membership=world.owner, workflow="weekly_content_plan",
                           data={"creator_id": other_world.creator.pk})  # fmt: skip


def test_weekly_content_plan_degrades_when_the_provider_is_down(world, remote):
    from tests.fakes.llm_server import Fault

    remote.add_fault(Fault("status", status=503), times=50)
    run = engine.drive(services.run_start(membership=world.owner, workflow="weekly_content_plan",
                                          data={"creator_id": world.creator.pk, "ideas": 2}).pk)  # fmt: skip
    assert run.state == RunState.SUCCEEDED, run.error  # the run finishes, saying what it could not do
    # The gateway fell back to the built-in writer and marked its answers degraded; so does the plan.
    assert StepRun.objects.get(run=run, step="ideas").output["degraded"] is True
    assert run.output["plan"]["degraded"] is True and run.output["plan"]["posts"]
    assert remote.count("openai") >= 1  # the provider was tried first
