"""SIMULATED fans: the one generator of realistic fans, conversations and purchases, used by the
demo data (``seed_demo``, through demo.py), the benchmark (bench/pages.py runs ``seed_demo``) and
the live demo (``manage.py simulate_fans`` and the beat task when ``SIMULATE_FANS`` is on).

Nothing here talks to a platform or the network. Two halves:

- **History** (``seed_creator_fans``): a creator's fans with everything they did, written as rows
  (no services, nothing queued). Spend has a long tail: each fan draws a "wealth" from a Pareto
  law (alpha 1.16, the 80/20 rule), which drives their tips, how often they write, their PPV
  prices and how often they unlock; a few fans in a hundred end up whales, the top ones with
  tens of thousands spent. Every amount is a Purchase row and the fan's four spend buckets are
  the sums of those rows (the database checks that the total is their sum); PPV unlocks are purchases tied to the PPV
  messages actually offered in the conversation. The conversation's denormalised columns
  (needs reply, waiting since, unread, fan value, last message, message count) are computed from
  the generated messages. The number of messages is exact: ``messages`` is split over the fans
  in proportion to their engagement (a fifth of fans never wrote and have no conversation), at
  most ``MAX_MESSAGES_PER_CONVERSATION`` each.
- **Live events** (``simulate``): inbound messages, new subscriptions, renewals switched off, tips,
  PPV unlocks of PPV messages that were sent, and paid messages, through the ingest services
  (``fan_upsert``, ``message_receive``, ``purchase_record``) exactly as a platform connector would
  call them, each with a platform id (messages and purchases), so an event delivered twice is
  stored once, as the services promise.

Writing: rows are built in chunks of ``CHUNK_FANS`` fans to bound memory and written as plain
tuples, not model instances: on PostgreSQL with ``COPY … FROM STDIN`` (psycopg 3
``cursor.copy``) after reserving the ids from the table's sequence, on SQLite with one
``executemany`` after reserving ids above the table's largest (seed_demo holds SQLite's write
lock for its whole transaction); rules, templates, segments and notes use ``bulk_create``. Hand
written because ``bulk_create`` was measurably too slow here: building, adapting and batching
model instances made ``seed_demo`` at 20,000 fans and 200,000 messages take 128 s on PostgreSQL
against 44 to 50 s with COPY (``FAST_INSERT = False`` switches back; docs/benchmarks.md).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, models
from django.utils import timezone

from apps.messaging.models import (
    Conversation,
    Direction,
    Fan,
    FanNote,
    FanTag,
    Message,
    MessageStatus,
    Purchase,
    PurchaseKind,
    Source,
    SubscriptionState,
)

MAX_MESSAGES_PER_CONVERSATION = 5000
MESSAGES_PER_FAN_DEFAULT = 10
CHUNK_FANS = 4000
FAST_INSERT = True  # COPY on PostgreSQL, executemany on SQLite; False: bulk_create (to compare)
BULK_BATCH_SIZE = 5000
SILENT_SHARE = 0.2
CENT = Decimal("0.01")
SUBSCRIPTION_PRICES = [999, 1299, 799, 1499, 499]  # cents a month, by creator index

# --- Words -----------------------------------------------------------------------------------------

FIRST_NAMES = [
    "James",
    "Michael",
    "Robert",
    "John",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Chris",
    "Daniel",
    "Matt",
    "Anthony",
    "Mark",
    "Steven",
    "Paul",
    "Andrew",
    "Josh",
    "Kevin",
    "Brian",
    "George",
    "Tim",
    "Ryan",
    "Jason",
    "Eric",
    "Jacob",
    "Nick",
    "Jon",
    "Justin",
    "Scott",
    "Brandon",
    "Ben",
    "Sam",
    "Greg",
    "Alex",
    "Frank",
    "Patrick",
    "Jack",
    "Dennis",
    "Jerry",
    "Tyler",
    "Aaron",
    "Jose",
    "Adam",
    "Nathan",
    "Henry",
    "Zach",
    "Doug",
    "Peter",
    "Kyle",
    "Noah",
    "Ethan",
    "Jeremy",
    "Walter",
    "Christian",
    "Keith",
    "Roger",
    "Terry",
    "Austin",
    "Sean",
    "Gerald",
    "Carl",
    "Dylan",
    "Harold",
    "Jordan",
    "Jesse",
    "Bryan",
    "Lawrence",
    "Arthur",
    "Gabriel",
    "Bruce",
    "Logan",
    "Billy",
    "Joe",
    "Alan",
    "Juan",
    "Elijah",
    "Willie",
    "Albert",
    "Wayne",
    "Randy",
    "Mason",
    "Vincent",
    "Liam",
    "Roy",
    "Bobby",
    "Caleb",
    "Bradley",
    "Russell",
    "Lucas",
    "Marco",
    "Luca",
    "Pierre",
    "Hugo",
    "Mateo",
    "Kenji",
    "Yuki",
    "Lars",
    "Sven",
    "Omar",
    "Ali",
    "Diego",
    "Carlos",
    "Pablo",
    "Tomasz",
    "Piotr",
    "Emily",
    "Sarah",
    "Jess",
    "Ashley",
]
HANDLE_WORDS = [
    "wolf",
    "king",
    "night",
    "fan",
    "lover",
    "rider",
    "sky",
    "blue",
    "dark",
    "gamer",
    "chill",
    "lucky",
    "happy",
    "real",
    "big",
    "lonely",
    "shadow",
    "storm",
    "fox",
    "bear",
    "tiger",
    "ace",
    "max",
    "jet",
    "boss",
    "cool",
    "sweet",
    "wild",
]
TIMEZONES = [
    "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin",
    "Europe/Madrid", "Australia/Sydney", "America/Toronto", "",
]  # fmt: skip
EXTRA_TAGS = [("night owl", 0.15), ("likes feet", 0.07), ("gamer", 0.1), ("custom requests", 0.05),
              ("birthday this month", 0.03), ("timewaster", 0.04), ("shy", 0.05)]  # fmt: skip

INBOUND = {
    "greeting": [
        "hey {c} 😍 just subscribed",
        "hi! finally subbed, been following you on insta for ages",
        "hello gorgeous, new here 👋",
        "just joined, your last post got me",
        "hiii, love your page already",
    ],
    "chat": [
        "how was your day?",
        "what are you up to tonight?",
        "you looked amazing in the last post 🔥",
        "haha you're too cute",
        "good morning beautiful ☀️",
        "just got off work, long day",
        "did you have a good weekend?",
        "that outfit yesterday… wow",
        "you always make my day better",
        "what's your favourite movie?",
        "lol same",
        "can't stop thinking about your last set",
    ],
    "ppv": [
        "do you have anything new?",
        "how much for the full set?",
        "can I get a custom video?",
        "saw the teaser… is there more? 👀",
        "send me the one from the beach 😏",
        "any bundles this week?",
    ],
    "whale": [
        "sent you a little something 💸",
        "you deserve a treat, check your tips",
        "what's the most exclusive thing you've got?",
        "I'll take the whole bundle",
        "name your price for a custom",
        "tipped you for the last one, worth every cent",
    ],
    "at_risk": [
        "sorry been busy lately",
        "thinking about cancelling tbh, not much new content",
        "turned off renew, money's tight this month",
        "haven't been on here much, work is crazy",
    ],
    "night": ["can't sleep, you up? 🌙", "late night again lol", "3am and still thinking of you"],
    "feet": ["any new feet pics? 🙈", "those heels in the last post 😍"],
}
OUTBOUND_HUMAN = [
    "aww thank you babe 🥰",
    "haha you're sweet, how was your day?",
    "just finished a shoot, exhausted but happy ✨",
    "good morning handsome 😘",
    "you always know what to say",
    "miss talking to you 🥺",
    "tell me more 😏",
    "busy day but I saved a minute for you",
    "lol you're trouble",
    "glad you liked it! more coming this week",
]
# (suggestion, what the member sent): a few kept word for word, others edited a little or a lot.
AI_DRAFTS = [
    ("Hey {n}! That means a lot, thank you 🥰 What did you like most?",
     "Hey {n}! That means a lot, thank you 🥰 What did you like most?"),
    ("Good morning {n} ☀️ I was just thinking about our last chat!",
     "Good morning {n} ☀️ was just thinking about you!"),
    ("Aww {n}, you always make me smile. How was work today?",
     "aww {n} you always make me smile 😘 how was work?"),
    ("I made something special this week, {n}… want a peek? 👀",
     "made something special this week… want a peek? 👀"),
    ("Thank you so much for the tip, {n}! You're the best 💕",
     "omg thank you so much {n}!! you're the best 💕"),
    ("Sorry for the late reply {n}, it's been a crazy day! Tell me everything.",
     "crazy day here, sorry! tell me everything"),
]  # fmt: skip
PPV_OFFERS = [
    "made something special just for you 🔥 unlock it?",
    "new set, 12 pics + a video, only for my favourites",
    "you asked for it… 😏",
    "the full beach set is here 🌊 don't tell anyone",
    "a little surprise for my VIPs 💋",
    "behind the scenes of today's shoot 🎬",
]
THANK_YOU = ["omg thank you so much for the tip 🥹💕", "you spoil me 😘 thank you!", "thank you babe, really 🖤"]
REENGAGE = ["miss you around here 🥺 where did you go?", "haven't heard from you in a while… everything ok?"]
NOTES = [
    "Prefers short replies, hates pushy upsells.",
    "Big spender on weekends; offer bundles Friday night.",
    "Birthday in March, mention it.",
    "Works night shifts (nurse). Writes around 3am.",
    "Asked twice for a custom video; price above 50 is fine.",
    "Went quiet after a price increase; try a discount.",
    "Loves cosplay sets, especially anime.",
]
TEMPLATES = [
    ("Welcome: warm", "welcome", "Hey {fan.first_name|babe}! So happy you're here 🥰 What made you subscribe?"),
    ("Welcome: playful", "welcome", "Welcome {fan.first_name|cutie} 😘 tell me one thing about you"),
    ("Re-engage: miss you", "reengagement", "{fan.first_name|Hey}, I miss our chats 🥺 come say hi?"),
    ("Re-engage: new content", "reengagement", "So much new stuff since you last visited, {fan.first_name|babe} 👀"),
    ("PPV: new set", "ppv_upsell", "Just for you {fan.first_name|babe}: my newest set, unlock it before it's gone 🔥"),
    ("PPV: bundle", "ppv_upsell", "{fan.first_name|Babe}, I bundled my three best sets for you 💋"),
    ("Thanks: tip", "thank_you", "Thank you so much {fan.first_name|babe}! You made my day 💕"),
    ("Birthday", "birthday", "Happy birthday {fan.first_name|babe}!! 🎂 a little gift is waiting for you"),
    ("Renewal reminder", "renewal", "{fan.first_name|Hey}, your sub ends soon… stay for what's coming next week? 🥺"),
    ("Custom request reply", "custom", "Customs start at {creator.first_name|my} usual price, tell me your idea 😏"),
]


def fill(text: str, *, fan_first: str, creator_first: str) -> str:
    """The demo templates' variables (only these two appear in them), rendered like templating.py."""
    for token, value in (("fan.first_name", fan_first), ("creator.first_name", creator_first)):
        while "{" + token in text:
            start = text.index("{" + token)
            end = text.index("}", start)
            fallback = text[start + len(token) + 2 : end] if "|" in text[start:end] else ""
            text = text[:start] + (value or fallback) + text[end + 1 :]
    return text


def _draft_pairs() -> list[tuple[str, str, Decimal]]:
    from apps.messaging.services import edit_ratio

    pairs = []
    for suggested, sent in AI_DRAFTS:
        pairs.append((suggested, sent, edit_ratio(suggested, sent)))
    return pairs


# --- Plans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatorInfo:
    pk: int
    agency_id: int
    platform: str
    first_name: str
    ppv_min_cents: int
    ppv_max_cents: int
    subscription_cents: int
    currency: str
    niche: str


@dataclass(frozen=True)
class Sender:
    user_id: int
    email: str
    weight: float


@dataclass
class TemplateRef:
    pk: int
    category: str
    text: str


def creator_info(creator, index: int) -> CreatorInfo:
    handles = creator.handles or {}
    platform = "fansly" if "fansly" in handles and "onlyfans" not in handles else "onlyfans"
    return CreatorInfo(
        pk=creator.pk,
        agency_id=creator.agency_id,
        platform=platform,
        first_name=(creator.display_name.split() or [""])[0],
        ppv_min_cents=int(creator.ppv_price_min * 100),
        ppv_max_cents=int(creator.ppv_price_max * 100),
        subscription_cents=SUBSCRIPTION_PRICES[index % len(SUBSCRIPTION_PRICES)],
        currency=creator.currency,
        niche=creator.niche,
    )


@dataclass
class _FanPlan:
    index: int
    wealth: float
    weight: float
    n_messages: int = 0


def allocate(total: int, weights: Sequence[float], cap: int = MAX_MESSAGES_PER_CONVERSATION) -> list[int]:
    """Split ``total`` into integers proportional to ``weights``, each at most ``cap``, summing to
    exactly ``total`` (ValueError when the weighted fans cannot hold that many)."""
    eligible = [i for i, w in enumerate(weights) if w > 0]
    if total > cap * len(eligible):
        raise ValueError(f"{total} messages do not fit in {len(eligible)} conversations of at most {cap}.")
    counts = [0] * len(weights)
    remaining, pool = total, eligible
    while remaining and pool:
        weight_sum = sum(weights[i] for i in pool)
        given = 0
        for i in pool:
            share = min(cap - counts[i], int(remaining * weights[i] / weight_sum))
            counts[i] += share
            given += share
        remaining -= given
        pool = [i for i in pool if counts[i] < cap]
        if remaining and given == 0:  # rounding left a few: one more each, heaviest first
            for i in sorted(pool, key=lambda i: -weights[i])[:remaining]:
                counts[i] += 1
                remaining -= 1
            pool = [i for i in pool if counts[i] < cap]
    return counts


def _money(cents: int) -> Decimal:
    return Decimal(cents) / 100


# --- History: one creator's fans ----------------------------------------------------------------


@dataclass
class FanHistory:
    fan: dict[str, Any]
    tags: list[str]
    conversation: dict[str, Any] | None = None
    messages: list[tuple] = field(default_factory=list)  # MESSAGE_COLUMNS order
    purchases: list[tuple] = field(default_factory=list)  # (kind, cents, at, message index or None, platform id)


MESSAGE_COLUMNS = (
    "direction", "text", "media_count", "ppv_price", "unlocked_at", "source", "status", "sent_by_id",
    "sent_by_email", "template_id", "suggested_text", "edit_ratio", "created_at", "sent_at",
    "delivered_at", "read_at",
)  # fmt: skip


class HistoryBuilder:
    """Builds fans with their history for one creator; every draw comes from ``rng``."""

    def __init__(self, rng: random.Random, *, creator: CreatorInfo, now: datetime, senders: list[Sender],
                 templates: list[TemplateRef]) -> None:  # fmt: skip
        self.rng = rng
        self.creator = creator
        self.now = now
        self.senders = senders
        self.sender_weights = [s.weight for s in senders]
        self.templates = templates
        self.drafts = _draft_pairs()

    def plans(self, fans: int, messages: int) -> list[_FanPlan]:
        rng = self.rng
        plans = []
        for index in range(fans):
            wealth = rng.paretovariate(1.16)
            silent = rng.random() < SILENT_SHARE
            weight = 0.0 if silent else 0.5 + wealth**0.8 * (0.5 + rng.random())
            plans.append(_FanPlan(index=index, wealth=wealth, weight=weight))
        if messages:
            for plan, count in zip(plans, allocate(messages, [p.weight for p in plans]), strict=True):
                plan.n_messages = count
        return plans

    def build(self, plan: _FanPlan) -> FanHistory:
        rng, now, creator = self.rng, self.now, self.creator
        wealth = plan.wealth
        first = rng.choice(FIRST_NAMES)
        display = first if rng.random() < 0.7 else f"{first} {rng.choice('ABCDEFGHJKLMNPRSTW')}."
        username = f"{first.lower()}{rng.choice(HANDLE_WORDS)}{rng.randint(1, 9999)}"
        follower = rng.random() < 0.08
        first_seen = now - timedelta(days=min(720.0, rng.expovariate(1 / 150)) + 0.05)
        # How recently the fan was last around: most paying fans recently, a tail gone quiet.
        roll = rng.random()
        quiet_days = (
            rng.random() * 3 if roll < 0.5 else 3 + rng.random() * 10 if roll < 0.72 else 13 + rng.expovariate(1 / 40)
        )
        end = max(first_seen + timedelta(minutes=5), now - timedelta(days=quiet_days))
        end = min(end, now)
        if follower:
            state, renew_on, subscribed_since, expires = SubscriptionState.NONE, False, None, None
        elif quiet_days > 25 and rng.random() < 0.6:
            state, renew_on, subscribed_since = SubscriptionState.EXPIRED, False, first_seen
            expires = min(now - timedelta(hours=1), end + timedelta(days=rng.random() * 20))
        else:
            state, subscribed_since = SubscriptionState.ACTIVE, first_seen
            renew_on = rng.random() < (0.8 if wealth < 3 else 0.92)
            months_in = math.ceil((now - first_seen).days / 30 + 0.01)
            expires = first_seen + timedelta(days=30 * months_in)
        tags = []
        if wealth > 20:
            tags.append("vip")
        for name, share in EXTRA_TAGS:
            if rng.random() < share:
                tags.append(name)
        history = FanHistory(fan={}, tags=tags)
        purchases = history.purchases
        # Subscriptions: one charge a month while subscribed.
        if subscribed_since is not None:
            stop = min(now, expires) if expires else now
            at, month = subscribed_since, 0
            while at <= stop and month < 24:
                purchases.append((PurchaseKind.SUBSCRIPTION, creator.subscription_cents, at, None, ""))
                month += 1
                at = subscribed_since + timedelta(days=30 * month)
        self._conversation(history, plan, first, first_seen, end, wealth)
        # Tips outside the conversation (on posts), heavier for the wealthy.
        for _ in range(min(40, int(wealth * rng.random() * 0.6))):
            cents = int(rng.choice((500, 1000, 1000, 2000, 2500, 5000)) * (1 + wealth / 25))
            at = first_seen + (end - first_seen) * rng.random()
            purchases.append((PurchaseKind.TIP, min(cents, 50_000), at, None, ""))
        spent = {kind: 0 for kind in PurchaseKind.values}
        last_purchase = None
        for kind, cents, at, _, _ in purchases:
            spent[kind] += cents
            last_purchase = at if last_purchase is None or at > last_purchase else last_purchase
        # Activity: what the fan did (messages, purchases other than automatic renewals, joining).
        activity = [m[12] for m in history.messages if m[0] == Direction.INBOUND]
        activity += [at for kind, _, at, _, _ in purchases if kind != PurchaseKind.SUBSCRIPTION]
        if subscribed_since is not None:
            activity.append(subscribed_since)
        last_active = max(activity) if activity else None
        total = sum(spent.values())
        ppv_offered = sum(1 for m in history.messages if m[3] is not None)
        ppv_bought = sum(1 for m in history.messages if m[4] is not None)
        history.fan = {
            "platform": creator.platform,
            "platform_fan_id": f"demo-{creator.pk}-{plan.index:07d}",
            "username": username,
            "display_name": display,
            "subscribed_since": subscribed_since,
            "subscription_state": state,
            "renew_on": renew_on,
            "subscription_expires_at": expires,
            "spent_subscriptions": _money(spent[PurchaseKind.SUBSCRIPTION]),
            "spent_tips": _money(spent[PurchaseKind.TIP]),
            "spent_ppv": _money(spent[PurchaseKind.PPV]),
            "spent_messages": _money(spent[PurchaseKind.MESSAGE]),
            "total_spent": _money(total),
            "ppv_offered": ppv_offered,
            "ppv_bought": ppv_bought,
            "last_purchase_at": last_purchase,
            "last_active_at": last_active,
            "timezone": rng.choice(TIMEZONES),
            "created_at": first_seen,
            "updated_at": now,
        }
        if history.conversation is not None:
            history.conversation["fan_value"] = _money(total)
        return history

    def _conversation(self, history: FanHistory, plan: _FanPlan, first: str, start: datetime, end: datetime,
                      wealth: float) -> None:  # fmt: skip
        n = plan.n_messages
        if n == 0:
            return
        rng, creator, now = self.rng, self.creator, self.now
        recent = (now - end) < timedelta(days=3)
        waiting = rng.random() < (0.45 if recent else 0.08)
        span = end - start
        buy_rate = min(0.85, 0.08 + 0.12 * math.log(wealth + 1))
        price_lift = min(1.0, math.log(wealth) / 5)
        ppv_share = 0.1 + 0.05 * min(wealth, 4)
        topics = (
            ["chat"] * 6
            + ["ppv"]
            + (["whale"] * 2 if wealth > 20 else [])
            + (["night"] if "night owl" in history.tags else [])
            + (["feet"] if "likes feet" in history.tags else [])
        )
        messages = history.messages
        purchases = history.purchases
        direction = Direction.INBOUND
        for k in range(n):
            at = start + span * ((k + 0.05 + 0.9 * rng.random()) / n)
            if k == n - 1:
                direction = Direction.INBOUND if waiting else Direction.OUTBOUND
            elif k > 0 and rng.random() < 0.6:
                direction = Direction.OUTBOUND if direction == Direction.INBOUND else Direction.INBOUND
            if direction == Direction.INBOUND:
                topic = "greeting" if k == 0 else rng.choice(topics)
                if k > 0 and (now - at).days > 10 and rng.random() < 0.1:
                    topic = "at_risk"
                text = rng.choice(INBOUND[topic]).replace("{c}", creator.first_name)
                messages.append((Direction.INBOUND, text, 0, None, None, Source.FAN, MessageStatus.RECEIVED, None,
                                 "", None, "", None, at, at, None, None))  # fmt: skip
                if wealth > 3 and rng.random() < 0.04:
                    purchases.append((PurchaseKind.MESSAGE, rng.choice((300, 500, 1000)), at, len(messages) - 1, ""))
                if rng.random() < (0.25 if topic == "whale" else 0.01 * min(wealth, 10)):
                    cents = int(rng.choice((1000, 2000, 5000, 10000)) * (1 + min(wealth, 200) / 40))
                    purchases.append((PurchaseKind.TIP, min(cents, 50_000), at, None, ""))
                continue
            sender = rng.choices(self.senders, self.sender_weights)[0]
            status = rng.choices((MessageStatus.READ, MessageStatus.DELIVERED, MessageStatus.SENT), (6, 3, 1))[0]
            delivered = at + timedelta(seconds=2) if status != MessageStatus.SENT else None
            read = at + timedelta(minutes=1 + 90 * rng.random()) if status == MessageStatus.READ else None
            if read is not None and read > now:
                read = None
            price = unlocked = None
            media = 0
            roll = rng.random()
            template_id, suggested, ratio = None, "", None
            if roll < ppv_share:
                lo, hi = creator.ppv_min_cents, creator.ppv_max_cents
                cents = lo + int((hi - lo) * min(1.0, rng.random() * (0.4 + price_lift)))
                cents = max(lo, cents // 100 * 100 - 1) if cents > 200 else cents
                price, media = _money(cents), rng.randint(1, 8)
                text, source = rng.choice(PPV_OFFERS), rng.choice((Source.HUMAN, Source.AI_DRAFT, Source.TEMPLATE))
                if source == Source.TEMPLATE and self.templates:
                    template = rng.choice([t for t in self.templates if t.category == "ppv_upsell"] or self.templates)
                    template_id = template.pk
                    suggested = fill(template.text, fan_first=first, creator_first=creator.first_name)
                    text, ratio = suggested, Decimal("0.000")
                elif source == Source.AI_DRAFT:
                    suggested, ratio = text, Decimal("0.000")
                if rng.random() < buy_rate:
                    unlocked = min(now, at + timedelta(minutes=2 + 600 * rng.random()))
                    purchases.append((PurchaseKind.PPV, cents, unlocked, len(messages), ""))
            elif roll < ppv_share + 0.35:
                suggested, text, ratio = rng.choice(self.drafts)
                suggested, text = suggested.replace("{n}", first), text.replace("{n}", first)
                source = Source.AI_DRAFT
            elif roll < ppv_share + 0.5 and self.templates:
                template = rng.choice(self.templates)
                template_id, source = template.pk, Source.TEMPLATE
                suggested = fill(template.text, fan_first=first, creator_first=creator.first_name)
                if rng.random() < 0.7:
                    text, ratio = suggested, Decimal("0.000")
                else:
                    text, ratio = suggested.rstrip("!?.🥰😘💕🔥👀🥺💋🎂") + " 😘", Decimal("0.050")
            elif roll < ppv_share + 0.55:
                text, source = rng.choice(REENGAGE if (now - at).days > 7 else THANK_YOU), Source.AUTOMATION
            else:
                text, source = rng.choice(OUTBOUND_HUMAN), Source.HUMAN
            automation = source == Source.AUTOMATION
            messages.append((Direction.OUTBOUND, text, media, price, unlocked, source, status,
                             None if automation else sender.user_id, "" if automation else sender.email,
                             template_id, suggested, ratio, at, at, delivered, read))  # fmt: skip
        last = messages[-1]
        waiting_since, unread = None, 0
        if last[0] == Direction.INBOUND:
            for message in reversed(messages):
                if message[0] != Direction.INBOUND:
                    break
                waiting_since, unread = message[12], unread + 1
        preview = " ".join(last[1].split())[:140] or ("📎 media" if last[2] else "")
        history.conversation = {
            "needs_reply": waiting_since is not None,
            "waiting_since": waiting_since,
            "unread_count": unread,
            "last_message_at": last[12],
            "last_message_preview": preview,
            "last_message_direction": last[0],
            "message_count": n,
            "created_at": messages[0][12],
        }


# --- Writing ------------------------------------------------------------------------------------


def _fast_insert() -> bool:
    return FAST_INSERT and connection.vendor in ("postgresql", "sqlite")


def _reserve_ids(table: str, count: int) -> list[int]:
    """``count`` new primary keys for ``table``, reserved inside the running transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return [row[0] for row in cursor.fetchall()]
        # SQLite: one writer at a time (seed_demo holds the write lock for its whole transaction);
        # explicit ids above both the largest id and AUTOINCREMENT's high-water mark.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608 (model table)
        top = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        first = max(top, row[0] if row else 0) + 1
        return list(range(first, first + count))


def write_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, now: datetime,
               need_ids: bool = True) -> list[int]:  # fmt: skip
    """Insert ``rows`` (values in ``columns`` order, columns by attname) into ``model``; fields not
    named take their default (auto_now fields: ``now``). Answers the new ids in row order when
    ``need_ids``. PostgreSQL: COPY; SQLite: one executemany; otherwise (or with FAST_INSERT off)
    bulk_create."""
    if not rows:
        return []
    fields = {f.attname: f for f in model._meta.concrete_fields}
    extra: list[tuple[str, Any]] = []
    for name, f in fields.items():
        if f.primary_key or name in columns:
            continue
        auto = getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        extra.append((name, now if auto else f.get_default()))
    if not _fast_insert():
        objs = [model(**dict(zip(columns, row, strict=True)), **dict(extra)) for row in rows]
        model.objects.bulk_create(objs, batch_size=BULK_BATCH_SIZE)
        return [obj.pk for obj in objs]
    table = model._meta.db_table
    names = [*columns, *(name for name, _ in extra)]
    tail = tuple(value for _, value in extra)
    ids = _reserve_ids(table, len(rows)) if need_ids else []
    if need_ids:
        names = ["id", *names]
    json_at = [i for i, name in enumerate(names) if isinstance(fields[name], models.JSONField)]
    quote = connection.ops.quote_name
    column_list = ", ".join(quote(fields[name].column) for name in names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            with cursor.cursor.copy(f"COPY {quote(table)} ({column_list}) FROM STDIN") as copy:
                for position, row in enumerate(rows):
                    values = (ids[position], *row, *tail) if need_ids else (*row, *tail)
                    if json_at:
                        values = list(values)
                        for i in json_at:
                            values[i] = Jsonb(values[i])
                    copy.write_row(values)
            return ids
        # SQLite stores datetimes as naive UTC text, as Django does.
        datetime_at = [i for i, name in enumerate(names) if isinstance(fields[name], models.DateTimeField)]

        def adapted():
            for position, row in enumerate(rows):
                values = [ids[position], *row, *tail] if need_ids else [*row, *tail]
                for i in datetime_at:
                    value = values[i]
                    if value is not None:
                        values[i] = str(value.astimezone(UTC).replace(tzinfo=None))
                for i in json_at:
                    values[i] = json.dumps(values[i])
                yield values

        placeholders = ", ".join(["%s"] * len(names))
        insert = f"INSERT INTO {quote(table)} ({column_list}) VALUES ({placeholders})"  # noqa: S608 (model columns)
        cursor.executemany(insert, adapted())
    return ids


def write_histories(histories: list[FanHistory], *, creator: CreatorInfo, now: datetime) -> dict[str, int]:
    """Write a chunk of fans with their conversations, messages, purchases and tags."""
    agency_id, creator_id = creator.agency_id, creator.pk
    fan_columns = ["agency_id", "creator_id", *histories[0].fan.keys()]
    fan_ids = write_rows(Fan, fan_columns, [(agency_id, creator_id, *h.fan.values()) for h in histories], now=now)
    with_conversation = [(fan_id, h) for fan_id, h in zip(fan_ids, histories, strict=True) if h.conversation]
    conversation_ids: list[int] = []
    if with_conversation:
        conv_columns = ["agency_id", "creator_id", "fan_id", *with_conversation[0][1].conversation.keys()]
        conversation_ids = write_rows(
            Conversation,
            conv_columns,
            [(agency_id, creator_id, fan_id, *h.conversation.values()) for fan_id, h in with_conversation],
            now=now,
        )
    message_rows = []
    for conversation_id, (fan_id, h) in zip(conversation_ids, with_conversation, strict=True):
        head = (agency_id, creator_id, conversation_id, fan_id)
        message_rows.extend((*head, *m) for m in h.messages)
    message_ids = write_rows(
        Message, ["agency_id", "creator_id", "conversation_id", "fan_id", *MESSAGE_COLUMNS], message_rows, now=now
    )
    del message_rows
    purchase_rows = []
    offset = 0
    conversation_of = {fan_id: True for fan_id, _ in with_conversation}
    for fan_id, h in zip(fan_ids, histories, strict=True):
        for kind, cents, at, index, platform_id in h.purchases:
            message_id = message_ids[offset + index] if index is not None else None
            purchase_rows.append(
                (agency_id, creator_id, fan_id, kind, _money(cents), creator.currency, at, message_id, platform_id)
            )
        if fan_id in conversation_of:
            offset += len(h.messages)
    write_rows(
        Purchase,
        ["agency_id", "creator_id", "fan_id", "kind", "amount", "currency", "purchased_at", "message_id",
         "platform_purchase_id"],
        purchase_rows,
        now=now,
        need_ids=False,
    )  # fmt: skip
    tag_rows = [(agency_id, creator_id, fan_id, name) for fan_id, h in zip(fan_ids, histories, strict=True)
                for name in h.tags]  # fmt: skip
    write_rows(FanTag, ["agency_id", "creator_id", "fan_id", "name"], tag_rows, now=now, need_ids=False)
    return {
        "fans": len(fan_ids),
        "conversations": len(conversation_ids),
        "messages": len(message_ids),
        "purchases": len(purchase_rows),
        "tags": len(tag_rows),
        "_fan_ids": fan_ids,  # type: ignore[dict-item]
    }


def seed_creator_fans(
    rng: random.Random,
    *,
    creator: CreatorInfo,
    fans: int,
    messages: int,
    now: datetime,
    senders: list[Sender],
    templates: list[TemplateRef],
    note_authors: Sequence[int] = (),
) -> dict[str, int]:
    """Write ``fans`` fans of ``creator`` with ``messages`` messages in all (rows only)."""
    builder = HistoryBuilder(rng, creator=creator, now=now, senders=senders, templates=templates)
    totals = {"fans": 0, "conversations": 0, "messages": 0, "purchases": 0, "tags": 0, "notes": 0}
    plans = builder.plans(fans, messages)
    noted = {plan.index for plan in sorted(plans, key=lambda p: -p.wealth)[:3]}  # the biggest fans get notes
    notes: list[FanNote] = []
    for start in range(0, len(plans), CHUNK_FANS):
        chunk = plans[start : start + CHUNK_FANS]
        histories = [builder.build(plan) for plan in chunk]
        written = write_histories(histories, creator=creator, now=now)
        for fan_id, history, plan in zip(written.pop("_fan_ids"), histories, chunk, strict=True):
            if note_authors and (plan.index in noted or rng.random() < 0.004):
                notes.append(FanNote(agency_id=creator.agency_id, fan_id=fan_id, author_id=rng.choice(note_authors),
                                     text=rng.choice(NOTES)))  # fmt: skip
            del history
        for key, value in written.items():
            totals[key] += value
    FanNote.objects.bulk_create(notes, batch_size=2000)
    totals["notes"] = len(notes)
    return totals


def split(total: int, parts: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``parts`` (integers summing to ``total``)."""
    whole = sum(parts)
    if not whole:
        return [0] * len(parts)
    shares = [total * p // whole for p in parts]
    for i in range(total - sum(shares)):
        shares[i % len(shares)] += 1
    return shares


# --- Live events through the ingest services ------------------------------------------------------

EVENT_WEIGHTS = {
    "message": 55,
    "subscription": 10,
    "renewal_off": 4,
    "tip": 12,
    "ppv_unlock": 12,
    "paid_message": 7,
}


@dataclass
class SimulationReport:
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def add(self, kind: str) -> None:
        self.events += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1


def _random_fan(rng: random.Random, creator_ids: list[int]) -> Fan | None:
    """A random fan of these creators in two indexed queries, whatever the table's size."""
    fans = Fan.objects.filter(creator_id__in=creator_ids)
    bounds = fans.aggregate(low=models.Min("id"), high=models.Max("id"))
    if bounds["low"] is None:
        return None
    pick = rng.randint(bounds["low"], bounds["high"])
    return fans.filter(pk__gte=pick).order_by("pk").select_related("creator").first()


def _token(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def simulate(*, agency_id: int, events: int, rng: random.Random, now: datetime | None = None) -> SimulationReport:
    """Produce ``events`` SIMULATED platform events for the agency's creators through the ingest
    services, each carrying platform ids drawn from ``rng``."""
    from apps.accounts.models import Creator
    from apps.messaging.services import fan_upsert, message_receive, purchase_record

    report = SimulationReport()
    creators = list(Creator.objects.filter(agency_id=agency_id, is_archived=False).order_by("pk"))
    if not creators:
        return report
    infos = {c.pk: creator_info(c, i) for i, c in enumerate(creators)}
    creator_ids = list(infos)
    kinds, weights = list(EVENT_WEIGHTS), list(EVENT_WEIGHTS.values())
    base = now or timezone.now()
    for step in range(events):
        at = base + timedelta(milliseconds=step)
        kind = rng.choices(kinds, weights)[0]
        token = _token(rng)
        if kind == "subscription":
            creator = rng.choice(creators)
            info = infos[creator.pk]
            first = rng.choice(FIRST_NAMES)
            fan, _ = fan_upsert(
                creator=creator,
                platform=info.platform,
                platform_fan_id=f"sim-{token}",
                username=f"{first.lower()}{rng.choice(HANDLE_WORDS)}{rng.randint(1, 9999)}",
                display_name=first,
                subscribed_since=at,
                subscription_state=SubscriptionState.ACTIVE,
                renew_on=True,
                subscription_expires_at=at + timedelta(days=30),
                last_active_at=at,
                timezone=rng.choice(TIMEZONES),
            )
            purchase_record(fan=fan, kind=PurchaseKind.SUBSCRIPTION, amount=_money(info.subscription_cents), at=at,
                            platform_purchase_id=f"sim-sub-{token}")  # fmt: skip
            message_receive(fan=fan, text=rng.choice(INBOUND["greeting"]).replace("{c}", info.first_name),
                            platform_message_id=f"sim-msg-{token}", at=at)  # fmt: skip
            report.add(kind)
            continue
        if kind == "ppv_unlock":
            offered = (
                Message.objects.filter(
                    creator_id__in=creator_ids,
                    direction=Direction.OUTBOUND,
                    ppv_price__isnull=False,
                    unlocked_at__isnull=True,
                )
                .exclude(status__in=[MessageStatus.QUEUED, MessageStatus.FAILED])
                .order_by("-created_at", "-id")
                .select_related("fan__creator")[:20]
            )
            offered = list(offered)
            if not offered:
                report.skipped += 1
                continue
            message = rng.choice(offered)
            purchase_record(fan=message.fan, kind=PurchaseKind.PPV, amount=message.ppv_price, at=at, message=message,
                            platform_purchase_id=f"sim-ppv-{token}")  # fmt: skip
            report.add(kind)
            continue
        fan = _random_fan(rng, creator_ids)
        if fan is None:
            report.skipped += 1
            continue
        info = infos[fan.creator_id]
        if kind == "renewal_off":
            if fan.subscription_state != SubscriptionState.ACTIVE or not fan.renew_on:
                report.skipped += 1
                continue
            fan_upsert(creator=fan.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id, renew_on=False)
            message_receive(fan=fan, text=rng.choice(INBOUND["at_risk"]), platform_message_id=f"sim-msg-{token}", at=at)
        elif kind == "tip":
            cents = int(rng.choice((500, 1000, 2000, 5000)) * (1 + rng.paretovariate(1.5) / 10))
            purchase_record(fan=fan, kind=PurchaseKind.TIP, amount=_money(min(cents, 50_000)), at=at,
                            platform_purchase_id=f"sim-tip-{token}")  # fmt: skip
            message_receive(fan=fan, text=rng.choice(INBOUND["whale"]), platform_message_id=f"sim-msg-{token}", at=at)
        elif kind == "paid_message":
            message = message_receive(fan=fan, text=rng.choice(INBOUND["ppv"]), platform_message_id=f"sim-msg-{token}",
                                      at=at)  # fmt: skip
            purchase_record(fan=fan, kind=PurchaseKind.MESSAGE, amount=_money(rng.choice((300, 500, 1000))), at=at,
                            message=message, platform_purchase_id=f"sim-paid-{token}")  # fmt: skip
        else:
            topic = rng.choice(["chat", "chat", "chat", "ppv", "night"])
            message_receive(fan=fan, text=rng.choice(INBOUND[topic]), platform_message_id=f"sim-msg-{token}", at=at)
        report.add(kind)
    return report


def demo_agency_id() -> int | None:
    """The demo agency built by ``seed_demo`` (the only one the beat task simulates)."""
    from apps.accounts.demo import DEMO_DOMAIN
    from apps.accounts.models import Agency

    return (
        Agency.objects.filter(memberships__user__email__iendswith=f"@{DEMO_DOMAIN}")
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def simulate_demo_tick(*, events: int) -> int:
    """The beat task's batch: a few events for the demo agency, if there is one."""
    agency_id = demo_agency_id()
    if agency_id is None:
        return 0
    return simulate(agency_id=agency_id, events=events, rng=random.Random()).events
