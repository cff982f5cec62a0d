from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_profile_preferences_exports"),
    ]

    operations = [
        migrations.AddField(
            model_name="agency",
            name="entitlements_version",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="Raised after each committed change to the agency's plan, subscription or creators; "
                "web processes key their copy of the entitlements by it (apps/billing/entitlements.py).",
            ),
        ),
    ]
