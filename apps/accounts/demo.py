"""Demo data for accounts: the demo agency, its owner, manager and chatter, and its creators.

Runs first (ORDER 0): every other app's demo hook builds on ``ctx.agency`` and ``ctx.creators``.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.accounts.models import Agency, Creator, CreatorAssignment, Membership, User
from apps.core.registry import DemoContext

ORDER = 0
DEMO_DOMAIN = "demo.huntaze.local"
DEMO_PASSWORD = "huntaze-demo-2026"

PERSONAS = [
    {
        "display_name": "Luna Vale",
        "niche": "cosplay",
        "language": "en",
        "timezone": "America/Los_Angeles",
        "persona": "Playful cosplayer who turns every anime release into a photo set; warm, teasing, nerdy.",
        "voice": "Lowercase, lots of ✨ and 😘, quotes anime lines, calls fans 'cutie'.",
        "sample_texts": [
            "heyy cutie ✨ new maid set drops tonight, wanna see it first?",
            "omg you remembered my fav arc 🥹",
        ],
        "avoid_words": ["cheap", "desperate"],
        "avoid_topics": ["real location", "meeting in person"],
        "handles": {"onlyfans": "lunavale", "x": "lunavale_cos", "instagram": "luna.vale"},
        "ppv": ("8.00", "45.00"),
    },
    {
        "display_name": "Marta Fit",
        "niche": "fitness",
        "language": "es",
        "timezone": "Europe/Madrid",
        "persona": "Personal trainer from Madrid sharing gym sessions and behind-the-scenes; motivating and direct.",
        "voice": "Spanish with a few English gym words, energetic, 💪🔥, short sentences.",
        "sample_texts": ["¡Buenos días! Hoy toca pierna 💪 ¿te apuntas?", "Gracias por el apoyo, de verdad 🔥"],
        "avoid_words": ["gorda"],
        "avoid_topics": ["diet pills"],
        "handles": {"onlyfans": "martafit", "instagram": "marta.fit", "tiktok": "martafit"},
        "ppv": ("10.00", "60.00"),
    },
    {
        "display_name": "Chloé Noir",
        "niche": "lingerie & fashion",
        "language": "fr",
        "timezone": "Europe/Paris",
        "persona": "Parisian fashion model with an elegant, mysterious style; lingerie try-ons and city diaries.",
        "voice": "French, refined, few emoji (🖤), flirty but classy.",
        "sample_texts": ["Bonsoir mon cher 🖤 une nouvelle séance t'attend…", "Tu as aimé la robe rouge ?"],
        "avoid_words": ["vulgaire"],
        "avoid_topics": ["politics"],
        "handles": {"fansly": "chloenoir", "instagram": "chloe.noir.paris"},
        "ppv": ("12.00", "80.00"),
    },
    {
        "display_name": "Kai Rivers",
        "niche": "gaming & alt",
        "language": "en",
        "timezone": "Australia/Sydney",
        "persona": "Alt gamer streaming late-night co-op sessions; tattoos, dry humour, loyal to regulars.",
        "voice": "Dry, witty, gaming slang, 🎮 and 🖤, never uses exclamation marks twice.",
        "sample_texts": ["gg on that raid. you earned a little something 🎮", "stream's up in 10, bring snacks"],
        "avoid_words": ["noob"],
        "avoid_topics": ["family"],
        "handles": {"onlyfans": "kairivers", "x": "kai_rivers", "reddit": "kai_rivers"},
        "ppv": ("6.00", "40.00"),
    },
    {
        "display_name": "Giulia Sole",
        "niche": "travel & beach",
        "language": "it",
        "timezone": "Europe/Rome",
        "persona": "Sun-chasing traveller posting beach shoots from the Amalfi coast; sweet and romantic.",
        "voice": "Italian, affectionate, ☀️🌊, asks fans about their day.",
        "sample_texts": ["Ciao amore ☀️ com'è andata la giornata?", "Nuovo set in spiaggia, ti piace? 🌊"],
        "avoid_words": [],
        "avoid_topics": ["exact hotel names"],
        "handles": {"onlyfans": "giuliasole", "instagram": "giulia.sole"},
        "ppv": ("9.00", "55.00"),
    },
]


def seed(ctx: DemoContext) -> None:
    count = ctx.options["creators"]
    agency = Agency.objects.create(name="Velvet Room Agency (demo)", timezone="Europe/London")
    password = make_password(DEMO_PASSWORD)
    people = [
        ("owner", "Olivia Owner"),
        ("manager", "Max Manager"),
        ("chatter", "Chris Chatter"),
        ("viewer", "Vera Viewer"),
    ]
    verified = timezone.now()  # demo logins work fully: inviting and adding provider keys included
    users = User.objects.bulk_create(
        [
            User(email=f"{role}@{DEMO_DOMAIN}", full_name=name, password=password, email_verified_at=verified)
            for role, name in people
        ]
    )
    memberships = Membership.objects.bulk_create(
        [Membership(agency=agency, user=user, role=role) for user, (role, _) in zip(users, people, strict=True)]
    )
    creators = []
    for index in range(count):
        base = PERSONAS[index % len(PERSONAS)]
        suffix = "" if index < len(PERSONAS) else f" {index // len(PERSONAS) + 1}"
        low, high = base["ppv"]
        creators.append(
            Creator(
                agency=agency,
                display_name=base["display_name"] + suffix,
                niche=base["niche"],
                language=base["language"],
                timezone=base["timezone"],
                persona=base["persona"],
                voice=base["voice"],
                sample_texts=base["sample_texts"],
                avoid_words=base["avoid_words"],
                avoid_topics=base["avoid_topics"],
                handles=base["handles"],
                ppv_price_min=Decimal(low),
                ppv_price_max=Decimal(high),
            )
        )
    creators = Creator.objects.bulk_create(creators)
    chatter = memberships[2]
    CreatorAssignment.objects.bulk_create(
        [CreatorAssignment(agency=agency, membership=chatter, creator=c) for c in creators[:2]]
    )
    ctx.agency = agency
    ctx.memberships = {m.role: m for m in memberships}
    ctx.creators = creators
    ctx.logins = [(role, user.email, DEMO_PASSWORD) for user, (role, _) in zip(users, people, strict=True)]
    # The operator: staff (the monitoring pages; in the Django admin, only monitoring's models: the
    # demo password is public, so never a superuser), and a viewer of the demo agency so service
    # alerts reach them in the app too.
    operator = User.objects.create(
        email=f"operator@{DEMO_DOMAIN}", full_name="Otto Operator", password=password,
        email_verified_at=verified, is_staff=True,
    )  # fmt: skip
    operator.user_permissions.set(Permission.objects.filter(content_type__app_label="monitoring"))
    Membership.objects.create(agency=agency, user=operator, role="viewer")
    ctx.logins.append(("operator", operator.email, DEMO_PASSWORD))
    ctx.log(f"accounts: agency “{agency.name}”, {len(users) + 1} users, {len(creators)} creators")


def exists() -> bool:
    return User.objects.filter(email__iendswith=f"@{DEMO_DOMAIN}").exists()


def reset() -> None:
    Agency.objects.filter(memberships__user__email__iendswith=f"@{DEMO_DOMAIN}").distinct().delete()
    User.objects.filter(email__iendswith=f"@{DEMO_DOMAIN}").delete()
