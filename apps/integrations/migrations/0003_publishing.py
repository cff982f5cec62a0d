import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_profile_preferences_exports"),
        ("integrations", "0002_sync"),
        ("studio", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ScheduledPost",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("platform", models.CharField(choices=[("tiktok", "TikTok"), ("instagram", "Instagram"), ("reddit", "Reddit"), ("onlyfans", "OnlyFans"), ("fansly", "Fansly")], max_length=16)),
                ("title", models.CharField(blank=True, help_text="Reddit's title; TikTok photo posts' title.", max_length=300)),
                ("caption", models.TextField(blank=True)),
                ("subreddit", models.CharField(blank=True, max_length=21)),
                ("media_type", models.CharField(choices=[("video", "Video"), ("photo", "Photo(s)"), ("text", "Text or link only")], default="text", max_length=8)),
                ("media_urls", models.JSONField(blank=True, default=list, help_text="Public https URLs of the media, in order.")),
                ("scheduled_at", models.DateTimeField()),
                ("status", models.CharField(choices=[("scheduled", "Scheduled"), ("publishing", "Publishing"), ("published", "Published"), ("failed", "Failed"), ("cancelled", "Cancelled")], default="scheduled", max_length=12)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("polls", models.PositiveSmallIntegerField(default=0)),
                ("next_attempt_at", models.DateTimeField(blank=True, help_text="When the worker next looks at it: the publish time, a retry or a poll.", null=True)),
                ("publish_id", models.CharField(blank=True, help_text="TikTok publish id or Instagram container.", max_length=128)),
                ("platform_post_id", models.CharField(blank=True, max_length=128)),
                ("platform_url", models.URLField(blank=True, max_length=500)),
                ("last_response", models.TextField(blank=True, help_text="The platform's last answer, as it said it.")),
                ("last_error", models.TextField(blank=True)),
                ("published_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("agency", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.agency")),
                ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="scheduled_posts", to="integrations.connection")),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("creator", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="scheduled_posts", to="accounts.creator")),
                ("generation", models.ForeignKey(blank=True, help_text="The studio caption this post started from, if any.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="studio.generation")),
            ],
            options={
                "ordering": ["scheduled_at", "id"],
                "indexes": [
                    models.Index(fields=["status", "next_attempt_at"], name="integration_post_due"),
                    models.Index(fields=["agency", "scheduled_at"], name="integration_post_calendar"),
                ],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("status__in", ["scheduled", "publishing", "published", "failed", "cancelled"])), name="integration_post_status_valid"),
                    models.CheckConstraint(condition=models.Q(("platform__in", ["tiktok", "instagram", "reddit"])), name="integration_post_platform_valid"),
                    models.CheckConstraint(condition=models.Q(("media_type__in", ["video", "photo", "text"])), name="integration_post_media_type_valid"),
                    models.CheckConstraint(condition=models.Q(("attempts__lte", 100)), name="integration_post_attempts_bounded"),
                ],
            },
        ),
    ]
