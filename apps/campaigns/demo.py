"""Demo data for campaigns: three campaigns of the demo agency's first creator, made the way a
member makes them (through services.py, so each is validated and its deliveries are real):

- "Thank you, top fans": the creator's top spenders (at most ``AUDIENCE``), created by the
  manager, scheduled and started at once, then pumped for a moment (``delivery_pump``): as much
  as the send rate limits allow right now goes out during the seed (everything under generous
  limits; one message under the default of one every 3 s per account), and ``make run``'s worker
  sends the rest. It stays "sending" until campaigns' tick, every 10 s in beat, sees nothing left
  to send and completes it;
- "Tomorrow night's set": to a saved segment with fans (the messaging demo's), created by the
  chatter, scheduled for 20:00 tomorrow in the creator's timezone;
- "Weekend PPV: the full set": a PPV offer left as a draft by the owner;
- the welcome and PPV follow-up automations of that creator, switched on by the owner with their
  default messages: with ``make run``'s simulated fans, new subscribers are welcomed and locked
  PPV offers followed up while you watch (the other two stay off, to be tried).

Unlike the other demo hooks this one writes through services, not rows: a campaign's state is
its deliveries, which only ``campaign_start`` writes. Its side effects stay inside the demo: no
notification (no approval size is set, nobody's audience is empty), and the tasks published when
seed_demo commits are a start that finds the campaign started ("skipped") and the pump that sends
the rest. Nothing is drawn from ``ctx.rng``: the same data for every ``--seed``, and the seeders
after this one draw the same numbers as without it. ``seed_demo --reset`` removes it all by
cascade from the agency (campaigns, their deliveries, the simulated platform's messages).
With ``--fans 0`` only the draft is made (to an empty segment).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.campaigns.automations import DEFAULT_STEPS, StepInput, automation_save
from apps.campaigns.models import AutomationKind
from apps.campaigns.services import CampaignInput, campaign_create, campaign_schedule, campaign_start
from apps.core.registry import DemoContext
from apps.delivery.services import delivery_pump
from apps.messaging.models import Fan, Segment
from apps.messaging.selectors import fan_audience

ORDER = 40  # after messaging (30): it needs its fans and segments; before notifications (90)
AUDIENCE = 20  # top fans of the sent campaign: about a minute of sending at the default limits
PUMP_SECONDS = 5.0  # the most the seed spends sending (the pump returns at once when it must wait)
SEND_HOUR = time(20, 0)  # "tomorrow evening", in the creator's timezone
# The scheduled campaign's segment: the first of these with fans, else the first segment with fans.
PREFERRED_SEGMENTS = ["Bought in the last 7 days", "Whales", "At risk subscribers"]

THANK_YOU = (
    "heyy {fan.first_name|cutie} ✨ you've been so sweet to me lately, so here's a little thank-you: "
    "a brand new set is on its way to you tonight 😘"
)
TOMORROW = "hey {fan.first_name|cutie} ✨ tonight's new set is up! tell me which look you want next 😘"
WEEKEND_PPV = (
    "the full set from this weekend's shoot, every photo plus a little clip, just for you {fan.first_name|cutie} 🖤"
)


def seed(ctx: DemoContext) -> None:
    creator = ctx.creators[0]
    owner, manager, chatter = (ctx.memberships[role] for role in ("owner", "manager", "chatter"))
    made: list[str] = []

    top_fans = list(
        Fan.objects.for_agency(ctx.agency.pk)
        .filter(creator=creator)
        .order_by("-total_spent", "id")
        .values_list("pk", "platform")[:AUDIENCE]
    )
    if top_fans:
        data = CampaignInput(
            creator=creator, name="Thank you, top fans", text=THANK_YOU, fan_ids=[pk for pk, _ in top_fans]
        )
        sent = _send_now(manager, data, platforms=sorted({platform for _, platform in top_fans}))
        rest = "the tick completes it" if sent == len(top_fans) else "the worker sends the rest"
        made.append(f"1 sending ({sent} of {len(top_fans)} messages sent now, {rest})")

    segments = _segments(ctx, creator)
    with_fans = [
        segment
        for segment in segments
        if fan_audience(agency_id=ctx.agency.pk, creator_id=creator.pk, segment=segment).exists()
    ]
    if with_fans:
        at = _tomorrow_evening(creator.timezone)
        scheduled = campaign_create(
            membership=chatter,
            data=CampaignInput(
                creator=creator, name="Tomorrow night's set", text=TOMORROW, segment=with_fans[0], send_at=at
            ),
        )
        campaign_schedule(membership=chatter, campaign=scheduled)
        made.append(f"1 scheduled for {at:%Y-%m-%d %H:%M} {creator.timezone} to “{with_fans[0].name}”")

    audience = (with_fans or segments)[:1]
    if audience:
        campaign_create(
            membership=owner,
            data=CampaignInput(
                creator=creator,
                name="Weekend PPV: the full set",
                text=WEEKEND_PPV,
                segment=audience[0],
                ppv_price=((creator.ppv_price_min + creator.ppv_price_max) / 2).quantize(Decimal("0.01")),
                media=["vault:weekend-set-photos", "vault:weekend-set-clip"],
            ),
        )
        made.append("1 draft")
    for kind in (AutomationKind.WELCOME, AutomationKind.PPV_FOLLOWUP):
        automation_save(
            membership=owner,
            creator=creator,
            kind=kind,
            enabled=True,
            steps=[StepInput(**step) for step in DEFAULT_STEPS[kind]],
        )
    made.append("the welcome and PPV follow-up automations on")
    ctx.log(f"campaigns: {creator.display_name}: {', '.join(made) or 'none (no fans or segments)'}")


def _send_now(membership: Membership, data: CampaignInput, *, platforms: list[str]) -> int:
    """Create, schedule and start the campaign now, then send what the limits allow at once;
    answers how many messages went out."""
    campaign = campaign_create(membership=membership, data=data)
    campaign_schedule(membership=membership, campaign=campaign)
    campaign_start(campaign_id=campaign.pk)
    return sum(
        delivery_pump(creator_id=campaign.creator_id, platform=platform, seconds=PUMP_SECONDS).get("sent", 0)
        for platform in platforms
    )


def _segments(ctx: DemoContext, creator: Creator) -> list[Segment]:
    """The creator's segments and the agency-wide ones, the preferred names first."""
    segments = Segment.objects.for_agency(ctx.agency.pk).filter(Q(creator=creator) | Q(creator__isnull=True))
    rank = {name: index for index, name in enumerate(PREFERRED_SEGMENTS)}
    return sorted(segments.order_by("id"), key=lambda segment: rank.get(segment.name, len(rank)))


def _tomorrow_evening(zone_name: str) -> datetime:
    zone = zoneinfo.ZoneInfo(zone_name or "UTC")
    tomorrow = timezone.now().astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, SEND_HOUR, tzinfo=zone)
