"""Demo data for the fan CRM and inbox: per creator ``--fans`` fans with a long tail of whales,
their purchases, conversations (``--messages`` in all: some waiting for a reply, PPV offers
some unlocked, replies typed, drafted by AI or from templates, sent by the demo chatter and
manager), tags and a few notes; and per agency the fan rules, templates of every category and
three segments. Every draw comes from ``ctx.rng``; rows only (apps/messaging/simulation.py
writes them in chunks); everything reaches the agency by CASCADE, so ``seed_demo --reset``
removes it.

``seed_demo --creators 4 --fans 50000 --messages 2000000`` is the benchmark's data set
(200,000 fans and 2,000,000 messages; ``--fans`` counts per creator).
"""

from __future__ import annotations

from django.core.management import CommandError
from django.utils import timezone

from apps.accounts.models import CreatorAssignment
from apps.core.registry import DemoContext
from apps.messaging.models import FanRules, MessageTemplate, Segment
from apps.messaging.simulation import (
    MAX_MESSAGES_PER_CONVERSATION,
    MESSAGES_PER_FAN_DEFAULT,
    SILENT_SHARE,
    TEMPLATES,
    Sender,
    TemplateRef,
    creator_info,
    seed_creator_fans,
    split,
)

ORDER = 30  # after accounts (0), before notifications (90)

SEGMENTS = [
    ("Whales", {"tiers": ["whale"]}),
    ("At risk subscribers", {"lifecycles": ["at_risk"], "subscription_states": ["active"]}),
    ("Bought in the last 7 days", {"purchased_within_days": 7}),
    ("Night owls who spend", {"tags": ["night owl", "vip"], "spent_min": "25.00"}),
]


def seed(ctx: DemoContext) -> None:
    agency = ctx.agency
    now = timezone.now()
    fans_per_creator = ctx.options["fans"]
    creators = ctx.creators
    total_fans = fans_per_creator * len(creators)
    messages = ctx.options.get("messages")
    if messages is None:
        messages = MESSAGES_PER_FAN_DEFAULT * total_fans
    capacity = int(total_fans * (1 - SILENT_SHARE) * 0.9) * MAX_MESSAGES_PER_CONVERSATION
    if messages and messages > capacity:
        raise CommandError(f"--messages {messages} is too many for {total_fans} fans (at most {capacity}).")

    FanRules.objects.bulk_create([FanRules(agency=agency)])
    owner, manager = ctx.memberships["owner"], ctx.memberships["manager"]
    chatter = ctx.memberships["chatter"]
    templates = MessageTemplate.objects.bulk_create(
        [
            MessageTemplate(
                agency=agency,
                name=name,
                category=category,
                text=text,
                created_by_id=manager.user_id,
                use_count=ctx.rng.randint(0, 400),
            )
            for name, category, text in TEMPLATES
        ]
    )
    Segment.objects.bulk_create(
        [Segment(agency=agency, name=name, filters=filters, created_by_id=owner.user_id) for name, filters in SEGMENTS]
    )
    refs = [TemplateRef(pk=t.pk, category=t.category, text=t.text) for t in templates]
    users = {role: m.user for role, m in ctx.memberships.items()}
    assigned = set(CreatorAssignment.objects.filter(membership=chatter).values_list("creator_id", flat=True))
    totals: dict[str, int] = {}
    per_creator = split(messages, [fans_per_creator] * len(creators)) if fans_per_creator else [0] * len(creators)
    for index, (creator, creator_messages) in enumerate(zip(creators, per_creator, strict=True)):
        if creator.pk in assigned:
            senders = [
                Sender(users["chatter"].pk, users["chatter"].email, 6),
                Sender(users["manager"].pk, users["manager"].email, 3),
                Sender(users["owner"].pk, users["owner"].email, 1),
            ]
        else:
            senders = [
                Sender(users["manager"].pk, users["manager"].email, 3),
                Sender(users["owner"].pk, users["owner"].email, 1),
            ]
        written = seed_creator_fans(
            ctx.rng,
            creator=creator_info(creator, index),
            fans=fans_per_creator,
            messages=creator_messages,
            now=now,
            senders=senders,
            templates=refs,
            note_authors=[manager.user_id, chatter.user_id],
        )
        for key, value in written.items():
            totals[key] = totals.get(key, 0) + value
    ctx.log(
        f"messaging: {totals.get('fans', 0)} fans, {totals.get('conversations', 0)} conversations, "
        f"{totals.get('messages', 0)} messages, {totals.get('purchases', 0)} purchases, "
        f"{len(templates)} templates, {len(SEGMENTS)} segments"
    )
