"""Users get ``email_verified_at``. Every user that exists already counts as verified (they
signed up before verification existed, joined through an emailed invitation, or are demo or
operator accounts); from now on sign-up sends a verification link."""

from django.db import migrations, models
from django.db.models import F


def existing_users_are_verified(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=F("date_joined"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_token_scope_expiry"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the user opened the verification link. Unverified accounts cannot invite members "
                "or add AI provider keys.",
                null=True,
            ),
        ),
        migrations.RunPython(existing_users_are_verified, migrations.RunPython.noop),
    ]
