"""Automations: messages a creator sends by themselves when a fan does something — a welcome to
a new subscriber, a nudge when renewal is switched off, a win-back after the subscription ran
out, and follow-ups on a PPV offer left unbought — and the per-fan frequency cap they share with
campaigns.

How a run goes (``automations_tick``, beat, every 30 s)::

    event seen (subscribed, renewal off, expired, PPV unbought) ──▶ run: active, step 0 due at
    event + first delay ──(due)──▶ checks ──▶ step sent (a delivery on the ``automated`` queue),
    next step due after its delay … ──(last step)──▶ done
                                      └──(fan replied or bought — for a welcome: a member wrote
                                          first —, event no longer true, automation switched
                                          off)──▶ stopped, with the reason
    a fan at the frequency cap: the step waits an hour and is checked again (given up after 2 days)

Events are found by scanning (the fans' subscription fields, the creator's locked PPV offers),
not by listening: an event recorded while no worker ran is still seen on the next tick, and an
event starts at most one run (``AutomationRun``: one per automation, fan and event). Only events
from the moment an automation was switched on (and at most a week old) start runs, so switching
one on never messages the past. Each step's delivery carries the key ``auto-<run>-step-<n>``, so
a tick run twice or a worker lost mid-step never sends a step twice. While the agency is
read-only (billing's dunning, asked through apps.core.registry), its automations start nothing and
their due steps wait; they go out on the first tick after it pays.

What this module does not do: send (the delivery pipeline does, with its limits and retries) or
decide which fans exist (messaging's selectors answer the events).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from apps.accounts.models import PLATFORMS, Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.campaigns.models import (
    AUTOMATION_SOURCE,
    CAPPED_SOURCES,
    Automation,
    AutomationKind,
    AutomationRun,
    AutomationRunStatus,
)
from apps.campaigns.services import CAP_WINDOW, check_message_text, fan_cap
from apps.core.errors import ApplicationError
from apps.core.registry import entitlement_readonly_reason
from apps.delivery import selectors as delivery_selectors
from apps.delivery import services as delivery_services
from apps.delivery.models import Delivery
from apps.messaging import selectors as messaging_selectors
from apps.messaging import services as messaging_services
from apps.messaging.models import Fan, Source, SubscriptionState
from apps.messaging.templating import template_renderer, template_variables

logger = logging.getLogger(__name__)

MAX_STEPS = 3
MAX_DELAY_MINUTES = 30 * 24 * 60
# A follow-up gives the fan this long before the first nudge (a PPV is often bought within minutes).
MIN_FOLLOWUP_MINUTES = 30
LOOKBACK = timedelta(days=7)  # an event older than this never starts a run
DISCOVER_BATCH = 500  # runs started at once (a tick starts batches until none is left or its time is up)
DUE_BATCH = 200  # due steps read at once
COMMIT_EVERY = 50  # runs checked together and sent in one transaction (SQLite writers wait for it)
TICK_SECONDS = 20.0  # a tick stops starting batches after this (beat runs it every 30 s)
CAP_RETRY = timedelta(hours=1)
CAP_GIVE_UP = timedelta(days=2)
RECORD_WINDOW = timedelta(days=2)
RECORD_BATCH = 2000

STOPPED = {
    "replied": "The fan replied; the inbox takes over.",
    "answered": "A member wrote to the fan first.",
    "bought": "The fan bought something.",
    "unlocked": "The fan unlocked the PPV.",
    "unsubscribed": "The fan is no longer subscribed.",
    "renewed": "The fan switched renewal back on.",
    "resubscribed": "The fan subscribed again.",
    "switched_off": "The automation was switched off.",
    "cap": "The fan stayed at the frequency cap for two days.",
}

DEFAULT_STEPS = {
    AutomationKind.WELCOME: [
        {
            "delay_minutes": 5,
            "text": "Hey {fan.first_name|babe}, welcome! So happy you're here. Tell me what you like 💕",
        },
    ],
    AutomationKind.RENEWAL_OFF: [
        {
            "delay_minutes": 60,
            "text": "Hey {fan.first_name|babe}, I saw your renewal is off… I'd miss you! "
            "Anything you'd like to see more of?",
        },
    ],
    AutomationKind.EXPIRED: [
        {"delay_minutes": 60, "text": "Hey {fan.first_name|babe}, I miss you here! Come back and say hi 💕"},
        {
            "delay_minutes": 3 * 24 * 60,
            "text": "Still thinking of you {fan.first_name|babe}. New sets are waiting for you.",
        },
    ],
    AutomationKind.PPV_FOLLOWUP: [
        {"delay_minutes": 6 * 60, "text": "Did you see what I sent you, {fan.first_name|babe}? 😘"},
        {"delay_minutes": 24 * 60, "text": "Last reminder: it's still waiting for you, {fan.first_name|babe}."},
    ],
}


@dataclass
class StepInput:
    """One step as a member gives it (the form and the API both build these)."""

    delay_minutes: int | str | None
    text: str
    ppv_price: Decimal | str | None = None
    media: list[str] | None = None


# --- Reads -----------------------------------------------------------------------------------------


def automation_for(*, creator: Creator, kind: str) -> Automation:
    """The creator's automation of that kind, or an unsaved one with the default steps (off)."""
    automation = Automation.objects.filter(creator=creator, kind=kind).first()
    if automation is None:
        automation = Automation(
            agency_id=creator.agency_id, creator=creator, kind=kind, steps=[dict(step) for step in DEFAULT_STEPS[kind]]
        )
    return automation


def automation_overview(*, creators: list[Creator], now: datetime | None = None) -> list[dict]:
    """For each creator, each kind with its automation (saved or default) and its runs' counts
    over the last 7 days: a fixed number of queries whatever the number of creators."""
    now = now or timezone.now()
    saved = {(a.creator_id, a.kind): a for a in Automation.objects.filter(creator__in=creators)}
    counts: dict[tuple[int, str], int] = {}
    rows = (
        AutomationRun.objects.filter(automation_id__in=[a.pk for a in saved.values()], created_at__gte=now - LOOKBACK)
        .values("automation_id", "status")
        .annotate(count=Count("pk"))
    )
    for row in rows:
        counts[(row["automation_id"], row["status"])] = row["count"]
    overview = []
    for creator in creators:
        kinds = []
        for kind in AutomationKind:
            automation = saved.get((creator.pk, kind.value)) or automation_for_unsaved(creator, kind.value)
            kinds.append(
                {
                    "automation": automation,
                    "counts": {status: counts.get((automation.pk, status), 0) for status in AutomationRunStatus.values}
                    if automation.pk
                    else {},
                }
            )
        overview.append({"creator": creator, "kinds": kinds})
    return overview


def automation_for_unsaved(creator: Creator, kind: str) -> Automation:
    return Automation(
        agency_id=creator.agency_id, creator=creator, kind=kind, steps=[dict(step) for step in DEFAULT_STEPS[kind]]
    )


def automation_runs(*, automation: Automation) -> QuerySet[AutomationRun]:
    return automation.runs.select_related("fan").order_by("-created_at", "-id")


# --- Writes --------------------------------------------------------------------------------------


def _clean_steps(creator: Creator, kind: str, steps: list[StepInput]) -> list[dict]:
    steps = [step for step in steps if (step.text or "").strip() or step.delay_minutes not in (None, "")]
    if not steps:
        raise ApplicationError("Write at least the first message.", field="steps")
    if len(steps) > MAX_STEPS:
        raise ApplicationError(f"An automation sends at most {MAX_STEPS} messages.", field="steps")
    platforms = sorted(PLATFORMS)
    cleaned = []
    for number, step in enumerate(steps, start=1):
        field = f"step{number}"
        try:
            delay = int(step.delay_minutes)
        except (TypeError, ValueError):
            raise ApplicationError(f"Message {number}: enter the wait in minutes.", field=f"{field}_delay") from None
        low = MIN_FOLLOWUP_MINUTES if kind == AutomationKind.PPV_FOLLOWUP and number == 1 else 0
        if number > 1:
            low = max(low, 10)
        if not low <= delay <= MAX_DELAY_MINUTES:
            raise ApplicationError(
                f"Message {number}: wait from {low} minutes to {MAX_DELAY_MINUTES // (24 * 60)} days.",
                field=f"{field}_delay",
            )
        text = (step.text or "").strip()
        if not text:
            raise ApplicationError(f"Message {number}: write the text.", field=f"{field}_text")
        try:
            template_variables(text)
            check_message_text(creator=creator, text=text, platforms=platforms)
        except ApplicationError as error:
            raise ApplicationError(f"Message {number}: {error.message}", field=f"{field}_text") from None
        media = [str(item).strip() for item in (step.media or []) if str(item).strip()]
        if len(media) > 20 or any(len(item) > 200 for item in media):
            raise ApplicationError(f"Message {number}: attach at most 20 media references.", field=f"{field}_media")
        price = step.ppv_price
        if price in ("", None):
            price = None
        else:
            try:
                price = Decimal(str(price))
            except (InvalidOperation, ValueError):
                raise ApplicationError(
                    f"Message {number}: enter the PPV price as a number.", field=f"{field}_price"
                ) from None
            if not price.is_finite() or not creator.ppv_price_min <= price <= creator.ppv_price_max:
                raise ApplicationError(
                    f"Message {number}: {creator.display_name}'s PPV prices go from {creator.ppv_price_min} to "
                    f"{creator.ppv_price_max} {creator.currency}.",
                    field=f"{field}_price",
                )
            if not media:
                raise ApplicationError(f"Message {number}: a PPV offer needs media to unlock.", field=f"{field}_media")
        cleaned.append(
            {
                "delay_minutes": delay,
                "text": text,
                "ppv_price": str(price.quantize(Decimal("0.01"))) if price is not None else None,
                "media": media,
            }
        )
    return cleaned


@transaction.atomic
def automation_save(
    *, membership: Membership, creator: Creator, kind: str, enabled: bool, steps: list[StepInput]
) -> Automation:
    """Save the creator's automation of that kind. Switching it on starts watching for events
    from now; switching it off stops its runs (a step already handed to the pipeline is sent)."""
    require(membership, Perm.EDIT, creator=creator)
    if kind not in AutomationKind.values:
        raise ApplicationError("Unknown automation.", field="kind")
    if creator.agency_id != membership.agency_id:
        raise ApplicationError("No such creator.", field="creator")
    if enabled and creator.is_archived:
        raise ApplicationError(f"{creator.display_name} is archived; restore the creator first.", field="enabled")
    cleaned = _clean_steps(creator, kind, steps)
    automation = Automation.objects.select_for_update().filter(creator=creator, kind=kind).first()
    now = timezone.now()
    if automation is None:
        automation = Automation(agency_id=creator.agency_id, creator=creator, kind=kind, created_by=membership.user)
    was_enabled = automation.enabled
    automation.steps = cleaned
    automation.enabled = enabled
    automation.updated_by = membership.user
    if enabled and not was_enabled:
        automation.enabled_at = now
    if not enabled:
        automation.enabled_at = None
    automation.save()
    if was_enabled and not enabled:
        _stop_runs(automation.runs.filter(status=AutomationRunStatus.ACTIVE), "switched_off", now)
    return automation


def _stop_runs(runs: QuerySet[AutomationRun], reason: str, now: datetime) -> int:
    return runs.update(status=AutomationRunStatus.STOPPED, stop_reason=STOPPED[reason], next_at=None, updated_at=now)


# --- The tick ------------------------------------------------------------------------------------


def automations_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Start runs for new events, send the steps that are due, and put what automations sent
    into the fans' conversations. Safe to run twice at once: runs are unique per event, a step
    is taken with a conditional update and its delivery has its own key."""
    now = now or timezone.now()
    deadline = time.monotonic() + TICK_SECONDS
    counts = {"started": 0, "sent": 0, "stopped": 0, "waiting": 0, "recorded": 0}
    # A read-only agency (billing: trial over, unpaid past the grace period, canceled) sends
    # nothing: its automations start no run and its due steps wait, sent once it pays.
    readonly: dict[int, bool] = {}

    def held(agency_id: int) -> bool:
        if agency_id not in readonly:
            readonly[agency_id] = bool(entitlement_readonly_reason(agency_id, now))
        return readonly[agency_id]

    for automation in Automation.objects.filter(enabled=True).select_related("creator"):
        if not held(automation.agency_id):
            counts["started"] += _discover(automation, now, deadline)
    caps: dict[int, int | None] = {}  # each agency's frequency cap, read once a tick
    pending = AutomationRun.objects.filter(status=AutomationRunStatus.ACTIVE, next_at__lte=now)
    waiting = [agency_id for agency_id in pending.order_by().values_list("agency_id", flat=True).distinct()
               if held(agency_id)]  # fmt: skip
    while True:
        due = list(
            pending.exclude(agency_id__in=waiting).order_by("next_at", "id").values_list("pk", flat=True)[:DUE_BATCH]
        )
        taken = 0
        for start in range(0, len(due), COMMIT_EVERY):
            # A batch of runs checked together (a few queries for all their stop rules and caps)
            # and committed once: a commit and the checks of each step were most of its time.
            for outcome in _advance_batch(due[start : start + COMMIT_EVERY], now, caps):
                taken += 1
                if outcome in counts:
                    counts[outcome] += 1
        if len(due) < DUE_BATCH or not taken or time.monotonic() >= deadline:
            break  # nothing more is due, another tick holds what is, or the tick's time is up
    counts["recorded"] = _record_sent(now)
    return counts


def _events(automation: Automation, since: datetime, now: datetime) -> list[tuple[int, str, datetime, datetime]]:
    """(fan id, event key, event time, the time naming the event) of up to DISCOVER_BATCH events
    since then that have no run yet, oldest first."""
    kind = automation.kind
    scope = {"agency_id": automation.agency_id, "creator_id": automation.creator_id}
    runs = AutomationRun.objects.filter(automation_id=automation.pk)
    if kind == AutomationKind.WELCOME:
        fans = messaging_selectors.fans_subscribed_since(**scope, since=since)
        fans = fans.exclude(Exists(runs.filter(fan_id=OuterRef("pk"), ref_at=OuterRef("subscribed_since"))))
        rows = fans.order_by("subscribed_since", "pk").values_list("pk", "subscribed_since")[:DISCOVER_BATCH]
        return [(pk, f"sub-{at.timestamp():.6f}", at, at) for pk, at in rows]
    if kind == AutomationKind.RENEWAL_OFF:
        # One run per billing period; the switch itself carries no time, so the run's event time is
        # when the tick first saw it (the fan's record changed since the automation was switched on).
        fans = messaging_selectors.fans_renewal_off(**scope, changed_since=since, now=now)
        fans = fans.exclude(Exists(runs.filter(fan_id=OuterRef("pk"), ref_at=OuterRef("subscription_expires_at"))))
        rows = fans.order_by("updated_at", "pk").values_list("pk", "subscription_expires_at")[:DISCOVER_BATCH]
        return [(pk, f"renew-off-{ends.timestamp():.6f}", now, ends) for pk, ends in rows]
    if kind == AutomationKind.EXPIRED:
        fans = messaging_selectors.fans_expired_since(**scope, since=since, now=now)
        fans = fans.exclude(Exists(runs.filter(fan_id=OuterRef("pk"), ref_at=OuterRef("subscription_expires_at"))))
        rows = fans.order_by("subscription_expires_at", "pk").values_list("pk", "subscription_expires_at")
        return [(pk, f"expired-{at.timestamp():.6f}", at, at) for pk, at in rows[:DISCOVER_BATCH]]
    offers = messaging_selectors.ppv_unbought_since(**scope, since=since)
    offers = offers.exclude(Exists(runs.filter(fan_id=OuterRef("fan_id"), ref_at=OuterRef("sent_at"))))
    rows = offers.order_by("sent_at", "pk").values_list("fan_id", "pk", "sent_at")[:DISCOVER_BATCH]
    return [(fan_id, f"ppv-{message_id}", at, at) for fan_id, message_id, at in rows]


def _discover(automation: Automation, now: datetime, deadline: float) -> int:
    """Start a run for each event since the automation was switched on (at most a week back)
    that has none yet, batch after batch until none is left or the tick's time is up; answers
    how many started."""
    if not automation.steps:
        return 0
    since = max(automation.enabled_at, now - LOOKBACK)
    first_delay = timedelta(minutes=int(automation.steps[0]["delay_minutes"]))
    started = 0
    while True:
        events = _events(automation, since, now)
        AutomationRun.objects.bulk_create(
            [
                AutomationRun(
                    agency_id=automation.agency_id, automation=automation, fan_id=fan_id, trigger=trigger,
                    event_at=at, ref_at=ref, next_at=max(at + first_delay, now),
                )
                for fan_id, trigger, at, ref in events
            ],
            ignore_conflicts=True,  # a concurrent tick's runs stay
        )  # fmt: skip
        started += len(events)
        if len(events) < DISCOVER_BATCH or time.monotonic() >= deadline:
            return started


class _Facts:
    """What the stop rules and the frequency cap need about the fans of a batch of runs, read
    with a few queries for the whole batch instead of a few for each run."""

    def __init__(self, runs: list[AutomationRun], now: datetime, caps: dict[int, int | None]) -> None:
        self.now = now
        since = min(run.event_at for run in runs)
        self.activity = messaging_selectors.fans_activity_since(fan_ids=[run.fan_id for run in runs], since=since)
        offers = [int(run.trigger.removeprefix("ppv-")) for run in runs if run.trigger.startswith("ppv-")]
        self.unlocked = messaging_selectors.messages_unlocked(message_ids=offers) if offers else set()
        self.caps = caps
        self.counts: dict[tuple[int, str, str], int] = {}
        by_account: dict[tuple[int, int], list[str]] = {}
        for run in runs:
            if caps.setdefault(run.agency_id, fan_cap(run.agency_id)):
                by_account.setdefault((run.agency_id, run.fan.creator_id), []).append(run.fan.platform_fan_id)
        for (agency_id, creator_id), recipients in by_account.items():
            counted = delivery_selectors.delivery_counts_to(
                agency_id=agency_id, creator_id=creator_id, sources=CAPPED_SOURCES, since=now - CAP_WINDOW,
                recipient_ids=recipients,
            )  # fmt: skip
            for (platform, recipient), count in counted.items():
                self.counts[(creator_id, platform, recipient)] = count

    def _key(self, fan: Fan) -> tuple[int, str, str]:
        return (fan.creator_id, fan.platform, fan.platform_fan_id)

    def capped(self, run: AutomationRun) -> bool:
        cap = self.caps.get(run.agency_id)
        return bool(cap) and self.counts.get(self._key(run.fan), 0) >= cap

    def sent(self, run: AutomationRun) -> None:
        """One more message on its way to the run's fan (a second run of the same fan in this
        batch sees it)."""
        key = self._key(run.fan)
        self.counts[key] = self.counts.get(key, 0) + 1

    def stop_reason(self, run: AutomationRun) -> str | None:
        """Why the run must not go on, or None."""
        automation, fan, since = run.automation, run.fan, run.event_at
        if not automation.enabled:
            return "switched_off"

        def after(times: dict[int, datetime]) -> bool:
            return fan.pk in times and times[fan.pk] > since

        kind = automation.kind
        if kind == AutomationKind.WELCOME:
            # A new subscriber's first "hi" is what a welcome answers; a member writing first is not.
            if fan.subscription_state != SubscriptionState.ACTIVE:
                return "unsubscribed"
            return "answered" if after(self.activity.answered) else None
        if after(self.activity.wrote):
            return "replied"
        if kind == AutomationKind.RENEWAL_OFF:
            if fan.subscription_state != SubscriptionState.ACTIVE:
                return "unsubscribed"
            if fan.renew_on:
                return "renewed"
        if kind == AutomationKind.EXPIRED and fan.subscription_state == SubscriptionState.ACTIVE:
            return "resubscribed"
        if kind == AutomationKind.PPV_FOLLOWUP and int(run.trigger.removeprefix("ppv-")) in self.unlocked:
            return "unlocked"
        if after(self.activity.bought):
            return "bought"
        return None


def _advance_batch(run_ids: list[int], now: datetime, caps: dict[int, int | None]) -> list[str]:
    """Send the due step of each of these runs (or stop it, or make it wait for the cap), in one
    transaction with a savepoint per run; answers what happened to each. Runs another tick has
    taken (locked, or no longer due) are skipped."""
    outcomes: list[str] = []
    with transaction.atomic():
        runs = list(
            AutomationRun.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("automation__creator", "fan")
            .filter(pk__in=run_ids, status=AutomationRunStatus.ACTIVE, next_at__lte=now)
            .order_by("next_at", "id")
        )
        if not runs:
            return outcomes
        facts = _Facts(runs, now, caps)
        for run in runs:
            try:
                with transaction.atomic():
                    outcomes.append(_advance(run, now, facts))
            except Exception:  # one broken run must not hold up every other fan's
                logger.exception("automation run %s failed; trying again in an hour", run.pk)
                AutomationRun.objects.filter(pk=run.pk).update(next_at=now + CAP_RETRY, updated_at=now)
                outcomes.append("failed")
    return outcomes


def _advance(run: AutomationRun, now: datetime, facts: _Facts) -> str:
    """One run's due step: stopped, waiting for the cap, or handed to the pipeline."""
    automation, fan = run.automation, run.fan
    reason = facts.stop_reason(run)
    if reason is not None:
        _stop_runs(AutomationRun.objects.filter(pk=run.pk), reason, now)
        return "stopped"
    if facts.capped(run):
        due_since = run.event_at + timedelta(minutes=_minutes_until(automation, run.step))
        if now - due_since > CAP_GIVE_UP:
            _stop_runs(AutomationRun.objects.filter(pk=run.pk), "cap", now)
            return "stopped"
        AutomationRun.objects.filter(pk=run.pk).update(next_at=now + CAP_RETRY, updated_at=now)
        return "waiting"
    steps = automation.steps
    step = steps[run.step] if run.step < len(steps) else None
    if step is None:  # the automation was edited to fewer steps
        AutomationRun.objects.filter(pk=run.pk).update(status=AutomationRunStatus.DONE, next_at=None, updated_at=now)
        return "done"
    try:
        delivery_services.delivery_enqueue(
            agency_id=run.agency_id,
            creator_id=fan.creator_id,
            platform=fan.platform,
            recipient_id=fan.platform_fan_id,
            text=template_renderer(step["text"])(fan, automation.creator),
            ppv_price=Decimal(step["ppv_price"]) if step.get("ppv_price") else None,
            media_count=len(step.get("media") or []),
            idempotency_key=run.delivery_key(run.step),
            queue=Delivery.Queue.AUTOMATED,
            source=AUTOMATION_SOURCE,
            source_id=run.pk,
        )
    except ApplicationError as error:
        AutomationRun.objects.filter(pk=run.pk).update(
            status=AutomationRunStatus.STOPPED, stop_reason=f"Not sendable: {error.message}"[:200], next_at=None,
            updated_at=now,
        )  # fmt: skip
        return "stopped"
    facts.sent(run)
    following = run.step + 1
    last = following >= len(steps)
    AutomationRun.objects.filter(pk=run.pk).update(
        step=following,
        sent=run.sent + 1,
        status=AutomationRunStatus.DONE if last else AutomationRunStatus.ACTIVE,
        next_at=None if last else now + timedelta(minutes=int(steps[following]["delay_minutes"])),
        updated_at=now,
    )
    return "sent"


def _minutes_until(automation: Automation, step: int) -> int:
    """Minutes from the event to when the step was first due (for the cap's give-up)."""
    return sum(int(item["delay_minutes"]) for item in automation.steps[: step + 1])


def _record_sent(now: datetime) -> int:
    """Put the automation messages sent lately that are not in the fans' conversations yet into
    them (as sent by the automation); answers how many."""
    sent = delivery_selectors.delivery_sent_by_source_since(source=AUTOMATION_SOURCE, since=now - RECORD_WINDOW)
    recorded = 0
    agencies = sent.order_by().values_list("agency_id", "creator_id").distinct()
    for agency_id, creator_id in list(agencies):
        rows = messaging_services.messages_unrecorded(
            agency_id=agency_id, rows=sent.filter(agency_id=agency_id, creator_id=creator_id)
        ).values(
            "platform", "recipient_id", "text", "ppv_price", "media_count", "idempotency_key",
            "platform_message_id", "sent_at",
        )[:RECORD_BATCH]  # fmt: skip
        batch = [messaging_services.SentElsewhere(**row) for row in rows]
        if batch:
            try:
                recorded += messaging_services.messages_record_sent(
                    agency_id=agency_id, creator_id=creator_id, campaign_id=None, sent=batch, source=Source.AUTOMATION
                )
            except IntegrityError:  # a concurrent tick recorded them first
                logger.info("automation messages of creator %s were recorded by another tick", creator_id)
    return recorded


__all__ = [
    "DEFAULT_STEPS",
    "MAX_STEPS",
    "STOPPED",
    "StepInput",
    "automation_for",
    "automation_overview",
    "automation_runs",
    "automation_save",
    "automations_tick",
]
