"""Content studio data: performance history (posts), content ideas, and generations.

Posts are the creator's published content with its results; ideas and their scores are computed
from them (apps/studio/scoring.py), never invented by the model. A Generation is one request to
the studio and its result, kept so a member can reopen, copy or save it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.accounts.models import PLATFORMS, Agency, Creator, TenantQuerySet

# The platforms a creator has handles on (apps/accounts/models.py), as model choices.
Platform = models.TextChoices("Platform", [(key.upper(), (key, label)) for key, label in PLATFORMS.items()])


class Category(models.TextChoices):
    PHOTO = "photo", "Photo"
    VIDEO = "video", "Video"
    STORY = "story", "Story"
    PPV = "ppv", "PPV"
    LIVE = "live", "Live"


class Post(models.Model):
    """One published piece of content and how it did."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="posts")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    posted_at = models.DateTimeField()
    caption = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    category = models.CharField(max_length=8, choices=Category.choices)
    media_type = models.CharField(max_length=16, blank=True, help_text="photo, video, gallery, audio, text")
    views = models.PositiveIntegerField(default=0)
    likes = models.PositiveIntegerField(default=0)
    comments = models.PositiveIntegerField(default=0)
    tips = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    ppv_unlocks = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    external_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-posted_at", "-id"]
        indexes = [models.Index(fields=["creator", "posted_at"], name="post_creator_time")]
        constraints = [
            models.CheckConstraint(condition=models.Q(tips__gte=0), name="post_tips_not_negative"),
            models.CheckConstraint(condition=models.Q(revenue__gte=0), name="post_revenue_not_negative"),
            models.UniqueConstraint(
                fields=["creator", "platform", "external_id"],
                condition=~models.Q(external_id=""),
                name="post_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creator} {self.platform} {self.posted_at:%Y-%m-%d}"

    @property
    def engagement(self) -> int:
        return self.likes + self.comments


class Difficulty(models.TextChoices):
    EASY = "easy", "Easy"
    MEDIUM = "medium", "Medium"
    HARD = "hard", "Hard"


def _score_field(help_text: str) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text=help_text
    )


class ContentIdea(models.Model):
    """An idea in a creator's idea history, with scores computed from their own results."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="ideas")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=8, choices=Category.choices)
    tags = models.JSONField(default=list, blank=True)
    difficulty = models.CharField(max_length=8, choices=Difficulty.choices, default=Difficulty.MEDIUM)
    estimated_engagement = _score_field("0 to 100, from the creator's history for this category and tags.")
    trend_score = _score_field("0 to 100, from the agency's rising tags and categories.")
    ppv_suitability = _score_field("0 to 100")
    subscription_value = _score_field("0 to 100")
    tip_potential = _score_field("0 to 100")
    score_explanation = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, db_index=True, help_text="Normalised title, for near-duplicates.")
    is_favourite = models.BooleanField(default=False)
    used_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    generation = models.ForeignKey("Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="ideas")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["creator", "created_at"], name="idea_creator_time")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    estimated_engagement__lte=100,
                    trend_score__lte=100,
                    ppv_suitability__lte=100,
                    subscription_value__lte=100,
                    tip_potential__lte=100,
                ),
                name="idea_scores_at_most_100",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class GenerationType(models.TextChoices):
    MESSAGE = "message", "Message"
    IDEA = "idea", "Ideas"
    CAPTION = "caption", "Caption"
    HASHTAGS = "hashtags", "Hashtags"
    COMPREHENSIVE = "comprehensive", "Ideas with captions and hashtags"


class Generation(models.Model):
    """One studio request and its result."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused by the safety policy"
        CANCELLED = "cancelled", "Cancelled"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="generations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=16, choices=GenerationType.choices)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    text = models.TextField(blank=True, help_text="The streamed or final text, kept even when a stream failed.")
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    provider = models.CharField(max_length=60, blank=True)
    model = models.CharField(max_length=120, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.FloatField(default=0)
    degraded = models.BooleanField(default=False)
    saved = models.BooleanField(default=False, help_text="Saved to the library.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} for {self.creator}"
