"""The built-in workflows. Each step calls an existing service; none re-implements one.

- ``nightly_optimization``: apps/optimization's nightly run for one agency, then a notification
  to the member who started it when it found something.
- ``month_end_cost_report``: apps/monitoring's month spend (the cost page's selector) stored as the
  run's report, and an in-app notification to the agency's owners and managers.
- ``weekly_content_plan``: ideas → one caption per idea → hashtags per caption → a seven-day plan,
  through apps/studio's generation service (the AI gateway; the built-in offline writer works
  without keys), one a day from tomorrow at the creator's best posting hour (the optimization's
  timing model; 19:00 local without history). The captions are saved to the studio library and,
  on TikTok, Instagram or Reddit, proposed as draft posts on the publishing calendar awaiting a
  member's approval (apps/integrations/publishing.py ``post_draft``).
- ``reengagement``: a creator's fans at risk of churning (messaging's lifecycle rules) → one
  message per fan rewritten by the AI gateway in the creator's voice (campaigns' personalisation,
  fanned out in batches) → one direct campaign holding those messages, awaiting approval: nothing
  reaches a fan before an owner or manager approves it on the campaign page.

A step whose AI provider is down degrades the way the gateway does: the gateway falls back to the
built-in writer and marks the answer degraded, and the step's output says ``"degraded": true``;
when no answer comes at all, studio records the failed generation and the step answers
``{"degraded": true, "error": …}`` instead of failing the run. The re-engagement drafts keep the
campaign's template text for such fans, flagged for review, and the campaign is still proposed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.http import Http404
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Creator, Membership, Role
from apps.accounts.selectors import creator_get_for_member, member_list
from apps.core.errors import ApplicationError
from apps.notifications.services import notification_send
from apps.workflows.definitions import Step, StepContext, Workflow, register

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _run_url(ctx: StepContext) -> str:
    return reverse("workflows:run", args=[ctx.run_id])


# --- Nightly optimization --------------------------------------------------------------------------


def _optimize(ctx: StepContext) -> dict[str, Any]:
    from apps.optimization.services import run_nightly

    report = run_nightly(agency_id=ctx.agency_id)
    return {
        "creators": report.creators,
        "recommendations_created": report.recommendations_created,
        "anomalies_stored": report.anomalies_stored,
        "outcomes_measured": report.outcomes_measured,
        "offers_synced": report.offers_synced,
        "skipped": list(report.skipped)[:50],
    }


def _found_something(ctx: StepContext) -> bool:
    found = ctx.deps["optimize"] or {}
    return bool(found.get("recommendations_created") or found.get("anomalies_stored"))


def _notify_optimization(ctx: StepContext) -> dict[str, Any]:
    found = ctx.deps["optimize"]
    notification_send(
        membership=ctx.membership(),
        title="Nightly optimization found new advice",
        body=f"{found['recommendations_created']} new recommendation(s), {found['anomalies_stored']} anomaly point(s).",
        url=reverse("optimization:recommendations"),
    )
    return {"notified": 1}


register(
    Workflow(
        "nightly_optimization",
        title="Nightly optimization",
        description="Price and timing recommendations, anomalies and outcomes for every creator of the agency.",
        steps=[
            Step("optimize", _optimize, queue="bulk", timeout=1800, retries=2, title="Recommendations and anomalies"),
            Step(
                "notify",
                _notify_optimization,
                depends_on=["optimize"],
                when=_found_something,
                retries=1,
                idempotent=False,
                title="Tell me what it found",
            ),
        ],
    )
)


# --- Month-end cost report -------------------------------------------------------------------------


def _clean_month(membership: Membership, data: dict[str, Any]) -> dict[str, Any]:
    from apps.monitoring.cost import MonthError, parse_month

    today = timezone.now().date()
    raw = str(data.get("month") or "").strip()
    if not raw:
        raw = f"{(today.replace(day=1) - timedelta(days=1)):%Y-%m}"  # the month that just ended
    try:
        month = parse_month(raw, today=today)
    except MonthError as error:
        raise ApplicationError(str(error), field="month") from None
    return {"month": f"{month:%Y-%m}"}


def _spend(ctx: StepContext) -> dict[str, Any]:
    from apps.monitoring.cost import month_spend

    year, month = (int(part) for part in ctx.input["month"].split("-"))
    spend = month_spend(membership=ctx.membership(), month=date(year, month, 1))
    report = spend.report

    def shares(items) -> list[dict[str, Any]]:
        return [{"label": share.label, "cost_usd": str(share.cost), "calls": share.calls} for share in items[:5]]

    return {
        "month": ctx.input["month"],
        "total_usd": str(report.total),
        "calls": report.calls,
        "providers": shares(report.providers),
        "features": shares(report.features),
        "creators": shares(report.creators),
    }


def _notify_cost(ctx: StepContext) -> dict[str, Any]:
    report = ctx.deps["spend"]
    month = date(*(int(part) for part in report["month"].split("-")), 1)
    body = f"AI cost for {month:%B %Y}: ${report['total_usd']} over {report['calls']} call(s)."
    if report["providers"]:
        top = report["providers"][0]
        body += f" Largest provider: {top['label']} (${top['cost_usd']})."
    notified = 0
    for membership in member_list(agency_id=ctx.agency_id).filter(role__in=(Role.OWNER, Role.MANAGER)):
        notification_send(
            membership=membership, title=f"AI cost report for {month:%B %Y}", body=body, url=_run_url(ctx)
        )
        notified += 1
    return {"report": report, "summary": body, "notified": notified}


register(
    Workflow(
        "month_end_cost_report",
        title="Month-end AI cost report",
        description="The month's AI spend by provider, feature and creator, stored and sent to owners and managers.",
        clean_input=_clean_month,
        managers_only=True,  # the spend the cost page shows only to owners and managers
        steps=[
            Step("spend", _spend, retries=2, title="Read the month's AI spend"),
            # Not idempotent: a worker lost mid-send is left for a member rather than notifying twice.
            Step(
                "notify",
                _notify_cost,
                depends_on=["spend"],
                retries=0,
                idempotent=False,
                title="Store the report and notify",
            ),
        ],
    )
)


# --- Weekly content plan ---------------------------------------------------------------------------

MAX_PLAN_IDEAS = 7


def _clean_creator(membership: Membership, data: dict[str, Any], *, missing: str) -> Creator:
    """The input's ``creator_id`` as one of the member's creators (not archived); the same
    refusal for a missing creator and another agency's."""
    try:
        creator_id = int(data.get("creator_id"))
    except (TypeError, ValueError):
        raise ApplicationError(missing, field="creator_id") from None
    try:
        return creator_get_for_member(membership=membership, creator_id=creator_id, include_archived=False)
    except Exception:  # Http404: the same answer for missing and another agency's
        raise ApplicationError("Choose one of your creators.", field="creator_id") from None


def _clean_plan(membership: Membership, data: dict[str, Any]) -> dict[str, Any]:
    creator = _clean_creator(membership, data, missing="Choose the creator to plan for.")
    if not creator.persona.strip():
        raise ApplicationError(
            f"{creator.display_name} has no persona yet: describe who they are in Settings → Creators first.",
            field="creator_id",
        )
    try:
        ideas = int(data.get("ideas") or 3)
    except (TypeError, ValueError):
        raise ApplicationError("The number of ideas must be a whole number.", field="ideas") from None
    if not 1 <= ideas <= MAX_PLAN_IDEAS:
        raise ApplicationError(f"Plan between 1 and {MAX_PLAN_IDEAS} posts.", field="ideas")
    from apps.studio.selectors import platform_choices

    platform = str(data.get("platform") or "onlyfans")
    names = [name for name, _label in platform_choices()]
    if platform not in names:
        raise ApplicationError(f"Choose one of: {', '.join(names)}.", field="platform")
    return {"creator_id": creator.pk, "ideas": ideas, "platform": platform}


def _generate(ctx: StepContext, data: dict[str, Any]):
    """One studio generation in the name of the member who started the run."""
    from apps.studio.services import generation_run

    membership = ctx.membership()
    creator = creator_get_for_member(membership=membership, creator_id=ctx.input["creator_id"])
    return generation_run(membership=membership, creator=creator, data={"platform": ctx.input["platform"], **data})


def _degraded(generation) -> dict[str, Any]:
    return {
        "degraded": True,
        "error": generation.error or "The AI provider did not answer.",
        "generation_id": generation.pk,
    }


def _ideas(ctx: StepContext) -> dict[str, Any]:
    generation = _generate(ctx, {"type": "idea", "idea_count": ctx.input["ideas"]})
    if generation.status != "done":
        return {**_degraded(generation), "ideas": []}
    ideas = [
        {"title": idea.get("title", ""), "description": idea.get("description", "")}
        for idea in (generation.result or {}).get("ideas", [])
    ]
    return {"ideas": ideas[: ctx.input["ideas"]], "generation_id": generation.pk, "degraded": generation.degraded}


def _caption(ctx: StepContext) -> dict[str, Any]:
    idea = ctx.item
    generation = _generate(
        ctx, {"type": "caption", "media_description": f"{idea['title']}. {idea['description']}"[:2000]}
    )
    if generation.status != "done":
        return {**_degraded(generation), "idea": idea, "caption": ""}
    variations = (generation.result or {}).get("variations") or [{}]
    return {"idea": idea, "caption": variations[0].get("caption", ""), "generation_id": generation.pk,
            "degraded": generation.degraded}  # fmt: skip


PLAN_HASHTAGS = 8  # per post, or fewer where the platform takes fewer (X 3, Reddit none)


def _hashtags(ctx: StepContext) -> dict[str, Any]:
    from apps.studio.selectors import hashtag_limit

    caption = ctx.item
    count = min(PLAN_HASHTAGS, hashtag_limit(ctx.input["platform"]))
    if caption.get("degraded") or not caption.get("caption") or not count:
        return {**caption, "hashtags": []}
    generation = _generate(
        ctx, {"type": "hashtags", "media_description": caption["caption"][:2000], "hashtag_count": count}
    )
    if generation.status != "done":
        return {**caption, "hashtags": [], "hashtags_degraded": True}
    return {**caption, "hashtags": (generation.result or {}).get("hashtags", []),
            "hashtags_degraded": generation.degraded}  # fmt: skip


PLAN_DEFAULT_HOUR = 19  # creator-local posting hour when the optimization has no best time yet


def _plan_times(creator: Creator, count: int, *, today: date | None = None) -> list[datetime]:
    """One posting time a day from tomorrow (the day after ``today``, the creator's today by
    default), in the creator's time zone: on each weekday, the hour the optimization's timing
    model rates best for posting (apps/optimization), or 19:00 while it has too little history."""
    from apps.core.timezones import zone_or_utc
    from apps.optimization.services import creator_timing

    zone = zone_or_utc(creator.timezone)
    advice, _messaging = creator_timing(creator=creator)
    rates = getattr(advice, "rates", None)  # absent on "not enough data yet"
    tomorrow = (today or timezone.localtime(timezone.now(), zone).date()) + timedelta(days=1)
    times = []
    for offset in range(count):
        day = tomorrow + timedelta(days=offset)
        hour = int(rates[day.weekday()].argmax()) if rates is not None else PLAN_DEFAULT_HOUR
        # Through UTC and back: an hour that does not exist on a spring-forward day (02:00 in New
        # York) becomes the wall time it really is (03:00), as the draft and the plan show it.
        times.append(datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC).astimezone(zone))
    return times


def _plan_entry(ctx: StepContext, membership: Membership, creator: Creator, at: datetime, post: dict[str, Any],
                publishes_to: str | None) -> dict[str, Any]:  # fmt: skip
    """One day of the plan: its caption saved to the library and, where Huntaze publishes, drafted
    with as many of its hashtags as the platform's caption limit leaves room for (Reddit: the
    studio's text is the post's title)."""
    from apps.integrations.publishing import caption_with_hashtags, post_draft
    from apps.studio.selectors import generation_get_for_member
    from apps.studio.services import generation_save_to_library

    entry = {**post, **_plan_moment(at)}
    if not (post.get("generation_id") and post.get("caption")):
        return entry
    generation = generation_get_for_member(membership=membership, generation_id=post["generation_id"])
    generation_save_to_library(membership=membership, generation=generation)
    if publishes_to:
        platform = ctx.input["platform"]
        reddit = platform == "reddit"
        draft = post_draft(
            membership=membership, creator=creator, platform=platform, scheduled_at=at,
            caption="" if reddit else caption_with_hashtags(platform, post["caption"], post.get("hashtags", [])),
            title=post["caption"] if reddit else "", generation_id=generation.pk,
        )  # fmt: skip
        # A re-run finds the draft the first run made (perhaps approved or discarded since): the
        # plan shows it as it is, at its own time.
        entry.update(_plan_moment(timezone.localtime(draft.scheduled_at, at.tzinfo)))
        entry.update(
            draft_id=draft.pk, draft_status=draft.status, draft_url=reverse("integrations:post", args=[draft.pk])
        )
    return entry


def _plan_moment(at: datetime) -> dict[str, str]:
    return {"day": WEEKDAYS[at.weekday()], "date": at.date().isoformat(), "at": at.isoformat()}


def _plan(ctx: StepContext) -> dict[str, Any]:
    """The week laid out, a day a post at the creator's best hour; each caption saved to the
    studio library and, on a platform Huntaze publishes to, proposed as a draft post on the
    publishing calendar, awaiting a member's approval. Run twice (a retry), it drafts nothing twice."""
    from apps.integrations.models import PostStatus
    from apps.integrations.publishing import publish_label
    from apps.studio.selectors import platform_choices

    membership = ctx.membership()
    creator = creator_get_for_member(membership=membership, creator_id=ctx.input["creator_id"])
    publishes_to = publish_label(ctx.input["platform"])  # None: no publishing API, no drafts
    posts = ctx.deps["hashtags"]
    plan = []
    with transaction.atomic():  # every draft of the week, or none
        for at, post in zip(_plan_times(creator, len(posts)), posts, strict=True):
            plan.append(_plan_entry(ctx, membership, creator, at, post, publishes_to))
    ideas = ctx.deps["ideas"] or {}
    degraded = ideas.get("degraded") or any(p.get("degraded") or p.get("hashtags_degraded") for p in plan)
    drafts = sum(1 for entry in plan if entry.get("draft_status") == PostStatus.DRAFT)
    platform = ctx.input["platform"]
    if publishes_to:
        where = f"{drafts} {publishes_to} draft{pluralize(drafts)} {'awaits' if drafts == 1 else 'await'} " \
                "approval on the publishing calendar; the captions are in the studio library too."  # fmt: skip
    else:
        label = dict(platform_choices()).get(platform, platform)
        where = f"Huntaze does not publish {label}s: the captions wait in the studio library."
    return {"posts": plan, "degraded": bool(degraded), "drafts": drafts, "summary": where}


register(
    Workflow(
        "weekly_content_plan",
        title="Weekly content plan",
        description="Ideas, a caption for each and hashtags for each caption, laid out over the week at the "
        "creator's best hours; the captions go to the studio library and, for TikTok, Instagram and Reddit, "
        "to the publishing calendar as drafts awaiting approval.",
        clean_input=_clean_plan,
        steps=[
            Step("ideas", _ideas, queue="interactive", timeout=120, title="Content ideas"),
            Step(
                "captions",
                _caption,
                depends_on=["ideas"],
                queue="interactive",
                timeout=120,
                fan_out=lambda ctx: (ctx.deps["ideas"] or {}).get("ideas", []),
                title="A caption per idea",
            ),
            Step(
                "hashtags",
                _hashtags,
                depends_on=["captions"],
                queue="interactive",
                timeout=120,
                fan_out=lambda ctx: ctx.deps["captions"],
                title="Hashtags per caption",
            ),
            Step("plan", _plan, depends_on=["hashtags", "ideas"], title="The week's plan, drafts for approval"),
        ],
    )
)


# --- Re-engagement ---------------------------------------------------------------------------------

REENGAGE_FEATURE = "workflows.reengagement"  # the AI ledger's feature name for its drafts
REENGAGE_FANS = 100  # default number of at-risk fans drafted for, highest spend first
REENGAGE_MAX_FANS = 500
REENGAGE_BATCH = 10  # fans per drafts step run (one box each on the run page)
REENGAGE_MESSAGE_CHARS = 1000
REENGAGE_SECONDS = 240.0  # per batch; past this the fans left keep the template text
WINBACK_TEXT = (
    "Hey {fan.first_name|babe}, I haven't seen you around lately and I miss chatting with you. "
    "I've been making new things I think you'd love, come say hi?"
)


def _clean_reengagement(membership: Membership, data: dict[str, Any]) -> dict[str, Any]:
    from apps.campaigns.services import check_message_text, per_fan_variables
    from apps.messaging.selectors import fan_list_at_risk

    creator = _clean_creator(membership, data, missing="Choose the creator whose fans to win back.")
    try:
        fans = int(REENGAGE_FANS if data.get("max_fans") in (None, "") else data["max_fans"])
    except (TypeError, ValueError):
        raise ApplicationError("The number of fans must be a whole number.", field="max_fans") from None
    if not 1 <= fans <= REENGAGE_MAX_FANS:
        raise ApplicationError(f"Draft for between 1 and {REENGAGE_MAX_FANS} fans.", field="max_fans")
    message = data.get("message") or WINBACK_TEXT
    if not isinstance(message, str) or not message.strip():
        raise ApplicationError("Write the message to personalise, or leave it out for the default.", field="message")
    message = message.strip()
    if len(message) > REENGAGE_MESSAGE_CHARS:
        raise ApplicationError(f"Keep the message under {REENGAGE_MESSAGE_CHARS} characters.", field="message")
    at_risk = fan_list_at_risk(membership=membership, creator_id=creator.pk)
    platforms = sorted(set(at_risk.order_by().values_list("platform", flat=True).distinct())) or ["onlyfans"]
    try:
        per_fan_variables(message)  # unknown variables and stray braces, named
        check_message_text(creator=creator, text=message, platforms=platforms, field="message")
    except ApplicationError as error:
        raise ApplicationError(error.message, field="message") from None
    return {"creator_id": creator.pk, "max_fans": fans, "message": message}


def _reengage_creator(ctx: StepContext, membership: Membership) -> Creator:
    from apps.workflows.errors import PermanentStepError

    try:
        return creator_get_for_member(membership=membership, creator_id=ctx.input["creator_id"], include_archived=False)
    except Http404:
        raise PermanentStepError("The creator is archived, gone, or no longer one you can see.") from None


def _at_risk(ctx: StepContext) -> dict[str, Any]:
    from apps.messaging.selectors import fan_list_at_risk

    membership = ctx.membership()
    creator = _reengage_creator(ctx, membership)
    fans = fan_list_at_risk(membership=membership, creator_id=creator.pk)
    total = fans.count()
    ids = list(fans.values_list("pk", flat=True)[: ctx.input["max_fans"]])
    if not ids:
        summary = f"No fans at risk for {creator.display_name} right now: nobody to win back, no campaign made."
    elif len(ids) < total:
        summary = f"{total} fans at risk; drafting for the {len(ids)} who spent most."
    else:
        summary = f"{total} fan{'s' if total != 1 else ''} at risk; drafting a message for each."
    batches = [ids[start : start + REENGAGE_BATCH] for start in range(0, len(ids), REENGAGE_BATCH)]
    return {"creator": creator.display_name, "at_risk": total, "fans": len(ids), "batches": batches, "summary": summary}


def _drafts(ctx: StepContext) -> dict[str, Any]:
    from django.core.exceptions import PermissionDenied

    from apps.campaigns.services import personal_texts_write
    from apps.workflows.errors import PermanentStepError

    membership = ctx.membership()
    creator = _reengage_creator(ctx, membership)
    try:
        texts = personal_texts_write(
            membership=membership, creator=creator, text=ctx.input["message"], fan_ids=ctx.item,
            feature=REENGAGE_FEATURE, seconds=REENGAGE_SECONDS,
        )  # fmt: skip
    except PermissionDenied:
        raise PermanentStepError(
            f"The member who started this run may no longer message {creator.display_name}'s fans."
        ) from None
    drafts = [
        {"fan_id": t.fan_id, "text": t.text, "source": t.source, "note": t.note, "degraded": t.degraded} for t in texts
    ]
    ai = sum(1 for draft in drafts if draft["source"] == "ai")
    return {"drafts": drafts, "ai": ai, "fallbacks": len(drafts) - ai, "degraded": any(t.degraded for t in texts)}


def _propose(ctx: StepContext) -> dict[str, Any]:
    """The campaign awaiting approval, made once per run: the step's own row (locked) records the
    campaign in the same transaction that creates it, so running the step again (its worker died
    after the commit, or a member retried it) answers the same campaign instead of a second."""
    from apps.campaigns.services import CampaignInput, PersonalText, campaign_propose
    from apps.workflows.models import StepRun

    segment = ctx.deps["segment"] or {}
    drafts = [draft for batch in ctx.deps["drafts"] or [] for draft in batch["drafts"]]
    if not drafts:
        summary = (
            segment.get("summary") if not segment.get("fans") else "No message could be drafted: no campaign made."
        )
        return {"campaign_id": None, "fans": 0, "summary": summary}
    membership = ctx.membership()
    creator = _reengage_creator(ctx, membership)
    with transaction.atomic():
        row = StepRun.objects.select_for_update().get(pk=ctx.step_run_id)
        if (row.output or {}).get("campaign_id"):
            return row.output
        campaign = campaign_propose(
            membership=membership,
            data=CampaignInput(
                creator=creator, name=f"Re-engagement {timezone.now():%Y-%m-%d} (workflow run {ctx.run_id})",
                text=ctx.input["message"],
            ),
            texts=[PersonalText(**draft) for draft in drafts],
        )  # fmt: skip
        fallbacks = campaign.personalize_fallbacks
        degraded = any(draft["degraded"] for draft in drafts)
        summary = f"“{campaign.name}” waits for approval: {campaign.personalize_total} messages"
        summary += f", {fallbacks} of them the template text to check." if fallbacks else ", each written for its fan."
        if degraded:
            summary += " The AI provider did not answer for some fans: check their messages."
        output = {
            "campaign_id": campaign.pk, "campaign_url": reverse("campaigns:detail", args=[campaign.pk]),
            "name": campaign.name, "status": campaign.status, "fans": campaign.personalize_total,
            "ai": campaign.personalize_total - fallbacks, "fallbacks": fallbacks, "degraded": degraded,
            "summary": summary,
        }  # fmt: skip
        StepRun.objects.filter(pk=row.pk).update(output=output)
    return output


register(
    Workflow(
        "reengagement",
        title="Re-engagement",
        description="A creator's fans at risk of churning, a message written for each in the creator's voice, "
        "and one campaign holding them that waits for an owner's or manager's approval.",
        clean_input=_clean_reengagement,
        steps=[
            Step("segment", _at_risk, retries=2, title="Fans at risk"),
            Step(
                "drafts",
                _drafts,
                depends_on=["segment"],
                queue="bulk",
                timeout=int(REENGAGE_SECONDS) + 120,
                retries=2,
                fan_out=lambda ctx: (ctx.deps["segment"] or {}).get("batches", []),
                title="A message per fan",
            ),
            Step("campaign", _propose, depends_on=["segment", "drafts"], retries=2, title="Campaign awaiting approval"),
        ],
    )
)
