from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_stripe"),
    ]

    operations = [
        migrations.AddField(
            model_name="billingevent",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
