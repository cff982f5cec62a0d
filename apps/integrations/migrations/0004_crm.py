# Written by hand (helper "crm"): the CRM webhook models and Connection.refresh_failures.

import apps.core.crypto
import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_profile_preferences_exports"),
        ("integrations", "0003_publishing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="refresh_failures",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Token refreshes failed in a row; at INTEGRATIONS_BROKEN_AFTER_FAILURES it is broken.",
            ),
        ),
        migrations.CreateModel(
            name="CRMConnection",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("target_url", models.URLField(max_length=500)),
                ("signing_secret", apps.core.crypto.EncryptedTextField()),
                (
                    "event_kinds",
                    models.JSONField(blank=True, default=list, help_text="CRMEventKind values sent to the CRM."),
                ),
                (
                    "field_mapping",
                    models.JSONField(blank=True, default=dict, help_text="Our fan field → the CRM's field name."),
                ),
                ("active", models.BooleanField(default=True)),
                (
                    "public_id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, help_text="Names the inbound URL.", unique=True
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "agency",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.agency"
                    ),
                ),
                (
                    "created_by",
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
                "ordering": ["name", "id"],
            },
        ),
        migrations.CreateModel(
            name="CRMDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event_id", models.BigIntegerField(help_text="The bus event's id; the CRM's idempotency key.")),
                ("kind", models.CharField(max_length=64)),
                ("payload", models.JSONField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sending", "Sending"),
                            ("retrying", "Retrying"),
                            ("delivered", "Delivered"),
                            ("dead", "Dead (gave up)"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("response_code", models.PositiveIntegerField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "agency",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.agency"
                    ),
                ),
                (
                    "crm",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="integrations.crmconnection",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="CRMInboundEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event_id", models.CharField(max_length=128)),
                ("type", models.CharField(max_length=64)),
                ("payload", models.JSONField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("processed", "Processed"),
                            ("ignored", "Ignored (unknown type)"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("note", models.TextField(blank=True)),
                ("received_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "agency",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.agency"
                    ),
                ),
                (
                    "crm",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="inbound_events",
                        to="integrations.crmconnection",
                    ),
                ),
            ],
            options={
                "ordering": ["-received_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="crmconnection",
            constraint=models.UniqueConstraint(fields=("agency", "name"), name="integration_crm_name_unique"),
        ),
        migrations.AddIndex(
            model_name="crmdelivery",
            index=models.Index(fields=["status", "next_attempt_at"], name="integration_crm_delivery_due"),
        ),
        migrations.AddConstraint(
            model_name="crmdelivery",
            constraint=models.UniqueConstraint(fields=("crm", "event_id"), name="integration_crm_delivery_once"),
        ),
        migrations.AddConstraint(
            model_name="crmdelivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "sending", "retrying", "delivered", "dead"])),
                name="integration_crm_delivery_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="crminboundevent",
            constraint=models.UniqueConstraint(fields=("crm", "event_id"), name="integration_crm_inbound_once"),
        ),
        migrations.AddConstraint(
            model_name="crminboundevent",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "processed", "ignored", "failed"])),
                name="integration_crm_inbound_status_valid",
            ),
        ),
    ]
