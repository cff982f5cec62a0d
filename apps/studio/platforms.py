"""Platform rules the studio writes within: caption limits, length bands and hashtag limits.

Limits are the platforms' own (characters): OnlyFans post text 1,000; Fansly 1,500; Instagram
caption 2,200 with at most 30 hashtags; X post 280; TikTok caption 2,200; Reddit title 300.
Length bands split each limit into short / medium / long; a band a platform cannot hold (a long
Reddit title, a long post on X) is refused as invalid input rather than silently truncated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformRules:
    label: str
    caption_limit: int
    bands: dict[str, tuple[int, int]]
    max_hashtags: int


PLATFORMS: dict[str, PlatformRules] = {
    "onlyfans": PlatformRules(
        "OnlyFans post", 1000, {"short": (20, 120), "medium": (120, 400), "long": (400, 1000)}, 20
    ),
    "fansly": PlatformRules("Fansly post", 1500, {"short": (20, 120), "medium": (120, 400), "long": (400, 1500)}, 20),
    "instagram": PlatformRules(
        "Instagram caption", 2200, {"short": (20, 125), "medium": (125, 500), "long": (500, 2200)}, 30
    ),
    "x": PlatformRules("X post", 280, {"short": (20, 100), "medium": (100, 280)}, 3),
    "tiktok": PlatformRules(
        "TikTok caption", 2200, {"short": (20, 100), "medium": (100, 300), "long": (300, 2200)}, 10
    ),
    "reddit": PlatformRules("Reddit title", 300, {"short": (10, 80), "medium": (80, 300)}, 0),
}


def rules_for(platform: str) -> PlatformRules:
    return PLATFORMS[platform]
