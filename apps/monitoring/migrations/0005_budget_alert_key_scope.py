import re

from django.db import migrations

LEGACY = re.compile(r"^budget:(\d+):(\d{4}-\d{2}):(\d+)$")


def keys_name_their_scope(apps, schema_editor):
    """Budget alert keys gain the budget's scope (budget:{id}:{creator id|agency}:{YYYY-MM}:{pct}),
    so a budget moved to another scope fires its thresholds afresh. Keys written before name the
    scope the budget has now (the scope they were written for, unless it was moved since)."""
    Alert = apps.get_model("monitoring", "Alert")
    for alert in Alert.objects.filter(kind="budget", key__startswith="budget:").select_related("budget"):
        match = LEGACY.match(alert.key)
        if match is None or alert.budget is None:
            continue
        scope = str(alert.budget.creator_id) if alert.budget.creator_id is not None else "agency"
        alert.key = f"budget:{match[1]}:{scope}:{match[2]}:{match[3]}"
        alert.save(update_fields=["key"])


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0004_alert_dispatched_at"),
    ]

    operations = [
        migrations.RunPython(keys_name_their_scope, migrations.RunPython.noop),
    ]
