"""API tokens get a scope and an expiry.

Existing tokens keep what they could do (the highest scope their member's role allows: owners and
managers admin, chatters write, viewers read) and expire 90 days after this migration runs, so
integrations keep working while their owners are told to replace them.
"""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

ROLE_SCOPE = {"owner": "admin", "manager": "admin", "chatter": "write", "viewer": "read"}


def existing_tokens(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires_at = timezone.now() + timedelta(days=90)
    for role, scope in ROLE_SCOPE.items():
        ApiToken.objects.filter(membership__role=role).update(scope=scope, expires_at=expires_at)
    ApiToken.objects.filter(expires_at__isnull=True).update(expires_at=expires_at)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[
                    ("read", "Read: safe methods only"),
                    ("write", "Write: read, plus creators, studio and messages"),
                    ("admin", "Admin: write, plus members, invitations, tokens and agency settings"),
                ],
                default="read",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(db_index=True, null=True),
        ),
        migrations.RunPython(existing_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(db_index=True),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=models.Q(("scope__in", ["read", "write", "admin"])), name="apitoken_scope_valid"
            ),
        ),
    ]
