"""Demo data for the studio: a post history for each demo creator and five scored ideas.

The posts carry the patterns the analytics is meant to find, so a demo shows real findings
rather than noise: weekends and evenings (in the creator's time zone) do better; PPV and video
earn more and stories less; in each niche a few tags reliably lift engagement and one or two
hurt it; one tag is rising this week; questions in captions draw comments; and about 1.5% of
posts go viral. Ideas are scored with ``analytics.score_idea`` from the posts built here, so
their "why this score" matches the history a member sees.

Every random draw comes from ``ctx.rng``; rows are bulk-inserted; nothing is cached or sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from apps.core.registry import DemoContext
from apps.studio.analytics import PostRow, creator_zone, score_idea, title_fingerprint, trends_from_rows
from apps.studio.models import ContentIdea, Difficulty, Post

ORDER = 20
DAYS = 180
POSTS_PER_CREATOR = 150
POSTS_PER_CREATOR_LARGE = 60  # above LARGE_DEMO creators, so a 500-creator demo stays quick
LARGE_DEMO = 100
IDEAS_PER_CREATOR = 5
CENT = Decimal("0.01")

# Per niche: tags that lift engagement, tags that hurt it, one rising this week, neutral filler,
# and idea templates (title, description, category, tags, difficulty).
NICHES = {
    "cosplay": {
        "lift": ["maidcosplay", "animegirl", "genshin"],
        "hurt": ["selfie"],
        "rising": ["frieren"],
        "neutral": ["cosplay", "wig", "photoshoot", "kawaii", "weeb"],
        "ideas": [
            ("Maid café roleplay set", "A themed photo set with a café backdrop and a short teaser clip.", "ppv",
             ["maidcosplay", "cosplay"], "medium"),
            ("Frieren cosplay reveal", "Build anticipation with a wig test story, then the full set.", "photo",
             ["frieren", "animegirl"], "hard"),
            ("Costume closet tour", "Walk fans through your costume rack and let them vote on the next one.", "video",
             ["cosplay", "kawaii"], "easy"),
            ("Genshin character poll", "Fans pick the next character; the winner gets a PPV set.", "story",
             ["genshin", "animegirl"], "easy"),
            ("Wig styling time-lapse", "A time-lapse of styling a wig from box to finished look.", "video",
             ["wig", "photoshoot"], "medium"),
            ("Late-night anime watch party", "A live session reacting to a new episode with regulars.", "live",
             ["animegirl", "weeb"], "medium"),
        ],
    },
    "fitness": {
        "lift": ["legday", "gymgirl", "sweaty"],
        "hurt": ["mealprep", "motivation"],
        "rising": ["pilates"],
        "neutral": ["fitness", "workout", "gym", "abs", "glutes"],
        "ideas": [
            ("Leg day full routine", "The full leg workout filmed from two angles, with form tips.", "video",
             ["legday", "gymgirl"], "medium"),
            ("Pilates at home", "A 15-minute reformer-free pilates flow fans can follow.", "video",
             ["pilates", "workout"], "easy"),
            ("Post-workout glow set", "A short photo set right after training.", "photo", ["sweaty", "gymgirl"],
             "easy"),
            ("Private training session", "A one-to-one style session unlocked as PPV.", "ppv", ["legday", "glutes"],
             "hard"),
            ("Gym outfit try-on", "Try on five new sets and let fans rate them.", "story", ["gymgirl", "fitness"],
             "easy"),
            ("Live stretch and chat", "Cool-down stretching while answering fan questions.", "live",
             ["workout", "abs"], "medium"),
        ],
    },
    "lingerie": {
        "lift": ["lace", "redlingerie", "boudoir"],
        "hurt": ["ootd"],
        "rising": ["bridal"],
        "neutral": ["lingerie", "paris", "fashion", "silk", "elegance"],
        "ideas": [
            ("Red lace boudoir set", "A moody boudoir shoot in red lace by the window.", "ppv",
             ["redlingerie", "lace"], "medium"),
            ("Bridal lingerie try-on", "Three bridal-inspired sets, one reveal per day.", "photo",
             ["bridal", "boudoir"], "medium"),
            ("Paris rooftop diary", "A short video diary from a rooftop at golden hour.", "video", ["paris", "silk"],
             "hard"),
            ("Which set tonight? poll", "Let fans choose tonight's set in a story poll.", "story",
             ["lingerie", "lace"], "easy"),
            ("Silk robe slow reveal", "A slow, elegant clip built around one silk robe.", "video",
             ["silk", "elegance"], "medium"),
            ("Fitting-room live", "A live try-on where fans pick the colours.", "live", ["lingerie", "fashion"],
             "hard"),
        ],
    },
    "gaming": {
        "lift": ["gamergirl", "cosplaygamer", "latenightstream"],
        "hurt": ["setup", "patchnotes"],
        "rising": ["cozygames"],
        "neutral": ["gaming", "tattoos", "alt", "twitch", "coop"],
        "ideas": [
            ("Late-night co-op stream", "A co-op session with regulars, with a tip goal for the next map.", "live",
             ["latenightstream", "gamergirl"], "medium"),
            ("Cozy games Sunday", "A slow Sunday stream of a cozy game with chat.", "live", ["cozygames", "gaming"],
             "easy"),
            ("Game character cosplay", "Dress as the character from tonight's game.", "ppv",
             ["cosplaygamer", "gamergirl"], "hard"),
            ("Tattoo story time", "The story behind each tattoo, one per clip.", "video", ["tattoos", "alt"],
             "easy"),
            ("Rage-quit highlights", "The week's funniest fails, cut into one reel.", "video", ["gaming", "coop"],
             "medium"),
            ("Choose my next game", "A story poll for the next stream's game.", "story", ["gamergirl", "twitch"],
             "easy"),
        ],
    },
    "travel": {
        "lift": ["bikini", "amalficoast", "sunset"],
        "hurt": ["airport"],
        "rising": ["sailing"],
        "neutral": ["travel", "beach", "italy", "summer", "wanderlust"],
        "ideas": [
            ("Sunset bikini set", "A golden-hour set on the rocks above the sea.", "ppv", ["bikini", "sunset"],
             "medium"),
            ("Sailing day diary", "A day on a small boat along the coast, in clips.", "video",
             ["sailing", "amalficoast"], "hard"),
            ("Beach picnic photos", "A relaxed picnic shoot on a quiet beach.", "photo", ["beach", "summer"],
             "easy"),
            ("Guess where I am", "A story quiz with three photo clues.", "story", ["travel", "italy"], "easy"),
            ("Amalfi morning walk", "A slow morning walk through the old town.", "video",
             ["amalficoast", "wanderlust"], "medium"),
            ("Live from the terrace", "A relaxed live chat at sunset.", "live", ["sunset", "summer"], "medium"),
        ],
    },
}  # fmt: skip
NICHE_KEYWORDS = {
    "cosplay": "cosplay", "fitness": "fitness", "gym": "fitness", "lingerie": "lingerie", "fashion": "lingerie",
    "gaming": "gaming", "alt": "gaming", "travel": "travel", "beach": "travel",
}  # fmt: skip

CAPTIONS = {
    "en": (["new set just dropped", "late night vibes", "felt cute today", "behind the scenes from today's shoot",
            "something special for my favourites", "back at it", "a little preview"],
           ["which one is your fav?", "should I do more of these?", "what should I wear next?"],
           ["link in bio", "unlock it in your DMs", "don't miss this one"]),
    "es": (["nuevo set recién salido", "vibras de noche", "hoy me sentí guapa", "detrás de cámaras de hoy",
            "algo especial para mis favoritos"],
           ["¿cuál es tu favorita?", "¿hago más de estos?", "¿qué me pongo mañana?"],
           ["link en bio", "desbloquea el vídeo completo", "no te lo pierdas"]),
    "fr": (["nouvelle séance en ligne", "ambiance de nuit", "un petit aperçu", "les coulisses du shooting",
            "quelque chose de spécial pour toi"],
           ["laquelle tu préfères ?", "j'en fais d'autres ?", "je porte quoi demain ?"],
           ["lien en bio", "débloque la vidéo complète", "ne rate pas celle-ci"]),
    "it": (["nuovo set appena uscito", "atmosfera di sera", "un piccolo assaggio", "dietro le quinte di oggi",
            "qualcosa di speciale per te"],
           ["quale preferisci?", "ne faccio altri?", "cosa indosso domani?"],
           ["link in bio", "sblocca il video completo", "non perdere questo"]),
}  # fmt: skip
EMOJI = ["✨", "😘", "🔥", "🖤", "☀️", "💪", "🎮", "💋"]

CATEGORY_WEIGHTS = {"photo": 35, "video": 20, "story": 25, "ppv": 12, "live": 8}
CATEGORY_VIEWS = {"photo": 1500, "video": 2200, "story": 900, "ppv": 1200, "live": 800}
CATEGORY_ENGAGEMENT = {"photo": 1.0, "video": 1.15, "story": 0.8, "ppv": 0.9, "live": 1.2}
TIP_CHANCE = {"photo": 0.3, "video": 0.45, "story": 0.1, "ppv": 0.3, "live": 0.9}
TIP_SIZE = {"photo": 6, "video": 9, "story": 3, "ppv": 8, "live": 15}
MEDIA = {"photo": ["photo", "gallery"], "video": ["video"], "story": ["photo", "video"], "ppv": ["video", "gallery"],
         "live": ["video"]}  # fmt: skip
PAID_PLATFORMS = ("onlyfans", "fansly")
PLATFORM_REACH = {"onlyfans": 1.0, "fansly": 0.9, "instagram": 3.0, "tiktok": 4.0, "x": 2.0, "reddit": 1.5}


def seed(ctx: DemoContext) -> None:
    now = timezone.now()
    per_creator = POSTS_PER_CREATOR if len(ctx.creators) <= LARGE_DEMO else POSTS_PER_CREATOR_LARGE
    posts_by_creator = {creator.pk: _posts_for(ctx, creator, per_creator, now) for creator in ctx.creators}
    all_posts = [post for posts in posts_by_creator.values() for post in posts]
    Post.objects.bulk_create(all_posts, batch_size=1000)

    recent = [PostRow.from_post(p) for p in all_posts if p.posted_at >= now - timedelta(days=28)]
    trends = trends_from_rows(recent, now=now)
    ideas = []
    for creator in ctx.creators:
        history = [PostRow.from_post(p) for p in posts_by_creator[creator.pk]]
        templates = NICHES[_niche(creator)]["ideas"]
        for index, (title, description, category, tags, difficulty) in enumerate(
            ctx.rng.sample(templates, min(IDEAS_PER_CREATOR, len(templates)))
        ):
            scores = score_idea(creator=creator, category=category, tags=tags, trends=trends, history=history)
            ideas.append(
                ContentIdea(
                    agency=ctx.agency, creator=creator, title=title, description=description, category=category,
                    tags=tags, difficulty=Difficulty(difficulty), fingerprint=title_fingerprint(title),
                    is_favourite=index == 0, **scores.model_fields(),
                )
            )  # fmt: skip
    ContentIdea.objects.bulk_create(ideas, batch_size=1000)
    ctx.log(f"studio: {len(all_posts)} posts and {len(ideas)} scored ideas for {len(ctx.creators)} creators")


def _niche(creator) -> str:
    text = (creator.niche or "").lower()
    return next((niche for word, niche in NICHE_KEYWORDS.items() if word in text), "cosplay")


def _posts_for(ctx: DemoContext, creator, count: int, now: datetime) -> list[Post]:
    rng = ctx.rng
    zone = creator_zone(creator)
    profile = NICHES[_niche(creator)]
    base, questions, ctas = CAPTIONS.get(creator.language, CAPTIONS["en"])
    handles = [p for p in (creator.handles or {}) if p in PLATFORM_REACH] or ["onlyfans"]
    paid = [p for p in handles if p in PAID_PLATFORMS] or ["onlyfans"]
    mainstream = [p for p in handles if p not in PAID_PLATFORMS]
    low, high = float(creator.ppv_price_min), float(creator.ppv_price_max)
    today = now.astimezone(zone).date()
    recent_count = max(8, count // 12)  # creators post more often lately, so this week has a trend
    posts = []
    for i in range(count):
        offset = rng.randint(0, 6) if i < recent_count else rng.randint(7, DAYS - 1)
        hour = rng.choice([9, 11, 12, 13, 15, 17, 18, 19, 20, 20, 21, 21, 22, 23])
        day = today - timedelta(days=offset)
        posted_at = datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), tzinfo=zone)
        if posted_at > now:
            posted_at -= timedelta(days=1)
        is_recent = posted_at >= now - timedelta(days=7)
        category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
        if category in ("ppv", "live") or not mainstream or rng.random() < 0.7:
            platform = rng.choice(paid)
        else:
            platform = rng.choice(mainstream)

        tags = rng.sample(profile["neutral"], 2)
        rate = 0.05 * rng.lognormvariate(0, 0.25) * CATEGORY_ENGAGEMENT[category]
        for tag in profile["lift"]:
            if rng.random() < 0.3:
                tags.append(tag)
                rate *= 1.35
        for tag in profile["hurt"]:
            if rng.random() < 0.25:
                tags.append(tag)
                rate *= 0.75
        if rng.random() < (0.45 if is_recent else 0.3):
            tags.append(profile["rising"][0])
            rate *= 2.0 if is_recent else 1.0
        local = posted_at.astimezone(zone)
        rate *= 1.35 if local.weekday() >= 5 else 1.0
        rate *= 1.3 if local.hour >= 18 else 0.85 if local.hour < 12 else 1.0

        views = CATEGORY_VIEWS[category] * PLATFORM_REACH[platform] * rng.lognormvariate(0, 0.5)
        if rng.random() < 0.015:  # viral outlier
            views *= rng.uniform(5, 10)
            rate *= 1.6
        asks = rng.random() < 0.35
        has_cta = rng.random() < 0.4
        rate *= 1.1 if has_cta else 1.0
        views = max(50, round(views))
        engagement = round(views * min(rate, 0.6))
        comments = round(engagement * (0.2 if asks else 0.12))

        tips = Decimal(0)
        if platform in PAID_PLATFORMS and rng.random() < TIP_CHANCE[category]:
            tips = Decimal(str(TIP_SIZE[category] * rng.lognormvariate(0, 0.6))).quantize(CENT, ROUND_HALF_UP)
        unlocks, sales = 0, Decimal(0)
        if category == "ppv":
            unlocks = round(views * 0.02 * rng.lognormvariate(0, 0.3))
            price = Decimal(str(rng.uniform(low, high))).quantize(Decimal("1"), ROUND_HALF_UP) - Decimal("0.01")
            sales = unlocks * max(price, Decimal("0.99"))

        parts = [rng.choice(base)]
        if rng.random() < 0.6:
            parts.append(rng.choice(EMOJI))
        if asks:
            parts.append(rng.choice(questions))
        if has_cta:
            parts.append(rng.choice(ctas))
        if platform not in PAID_PLATFORMS and platform != "reddit":
            parts.append(" ".join(f"#{t}" for t in tags[:3]))
        posts.append(
            Post(
                agency_id=creator.agency_id, creator=creator, platform=platform, posted_at=posted_at,
                caption=" ".join(parts), tags=tags, category=category, media_type=rng.choice(MEDIA[category]),
                views=views, likes=engagement - comments, comments=comments, tips=tips, ppv_unlocks=unlocks,
                revenue=(sales + tips).quantize(CENT), external_id=f"demo-{creator.pk}-{i}",
            )
        )  # fmt: skip
    return posts
