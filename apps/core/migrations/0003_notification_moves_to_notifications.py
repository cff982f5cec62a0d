# Notification moved to apps.notifications (layering: core knows no tenant). Only Django's state
# forgets it here; the table core_notification and its rows stay, and notifications 0001 takes
# the model over in state on the same table.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_sharedkey"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Notification")],
            database_operations=[],
        ),
    ]
