"""Open "investigate a change" advice is per granularity: a daily and an hourly one may be open
together (one open recommendation per creator, kind and granularity). Hourly rows are indexed by
hour, so the hourly task finds the creators with recent rows without reading every agency."""

from django.db import migrations, models


def fill_granularity(apps, schema_editor):
    Recommendation = apps.get_model("optimization", "Recommendation")
    for recommendation in Recommendation.objects.filter(kind="anomaly").only("id", "payload").iterator():
        granularity = (recommendation.payload or {}).get("granularity") or "day"
        Recommendation.objects.filter(pk=recommendation.pk).update(granularity=granularity)


class Migration(migrations.Migration):
    dependencies = [
        ("optimization", "0003_service_anomaly"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="recommendation",
            name="rec_one_open_per_kind",
        ),
        migrations.AddField(
            model_name="recommendation",
            name="granularity",
            field=models.CharField(
                blank=True, choices=[("", "—"), ("day", "Daily"), ("hour", "Hourly")], default="", max_length=5
            ),
        ),
        migrations.RunPython(fill_granularity, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="hourlyperformance",
            index=models.Index(fields=["hour"], name="hourly_performance_hour"),
        ),
        migrations.AddConstraint(
            model_name="recommendation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open")),
                fields=("creator", "kind", "granularity"),
                name="rec_one_open_per_kind",
            ),
        ),
    ]
