import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SyncRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("interrupted", "Interrupted"),
                        ],
                        default="running",
                        max_length=12,
                    ),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[("manual", "Sync now"), ("scheduled", "Scheduled")], default="scheduled", max_length=10
                    ),
                ),
                (
                    "cursors",
                    models.JSONField(blank=True, default=dict, help_text="Feed → the provider's cursor reached."),
                ),
                ("fans_synced", models.PositiveIntegerField(default=0)),
                ("messages_synced", models.PositiveIntegerField(default=0)),
                ("transactions_synced", models.PositiveIntegerField(default=0)),
                (
                    "unchanged",
                    models.PositiveIntegerField(default=0, help_text="Items read that were already up to date."),
                ),
                ("pages", models.PositiveIntegerField(default=0)),
                ("error", models.TextField(blank=True)),
                ("started_at", models.DateTimeField(auto_now_add=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "agency",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.agency"
                    ),
                ),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sync_runs",
                        to="integrations.connection",
                    ),
                ),
                (
                    "started_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-started_at", "-id"],
                "indexes": [models.Index(fields=["connection", "-started_at"], name="integration_sync_history")],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("status", "running")),
                        fields=("connection",),
                        name="integration_one_running_sync",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["running", "succeeded", "failed", "interrupted"])),
                        name="integration_sync_status_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("trigger__in", ["manual", "scheduled"])),
                        name="integration_sync_trigger_valid",
                    ),
                ],
            },
        ),
    ]
