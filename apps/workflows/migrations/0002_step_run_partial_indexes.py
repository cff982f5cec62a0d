"""Recovery's two step-run indexes become partial, and the run foreign key's own index goes (the
unique (run, step, index) constraint's index starts with run_id).

Written for a large, busy table: on PostgreSQL the indexes are built and dropped CONCURRENTLY
(the migration is not atomic), new ones before old ones, and the foreign key's index is dropped
by name instead of by AlterField, which would drop and re-validate the foreign key constraint
itself. Workers keep running meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models

NEW = [
    models.Index(condition=models.Q(("state", "running")), fields=["claim_expires_at"], name="wf_step_running_claims"),
    models.Index(condition=models.Q(("state", "queued")), fields=["queued_at"], name="wf_step_queued_since"),
]
OLD = [
    models.Index(fields=["state", "claim_expires_at"], name="wf_step_claims"),
    models.Index(fields=["state", "queued_at"], name="wf_step_queued"),
]
RUN_ID_INDEX = "workflows_steprun_run_id_7280c46a"  # the name Django gave the foreign key's index


def _swap(schema_editor, model, add: list, remove: list[str]) -> None:
    concurrently = schema_editor.connection.vendor == "postgresql"
    for index in add:
        schema_editor.add_index(model, index, **({"concurrently": True} if concurrently else {}))
    for name in remove:
        keyword = "CONCURRENTLY " if concurrently else ""
        schema_editor.execute(f"DROP INDEX {keyword}IF EXISTS {schema_editor.quote_name(name)}")


def forwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("workflows", "StepRun"), NEW, [index.name for index in OLD] + [RUN_ID_INDEX])


def backwards(apps, schema_editor):
    model = apps.get_model("workflows", "StepRun")
    run_id = models.Index(fields=["run"], name=RUN_ID_INDEX)
    _swap(schema_editor, model, [*OLD, run_id], [index.name for index in NEW])


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("workflows", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(migrations.RemoveIndex(model_name="steprun", name=index.name) for index in OLD),
                migrations.AlterField(
                    model_name="steprun",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="step_runs",
                        to="workflows.workflowrun",
                    ),
                ),
                *(migrations.AddIndex(model_name="steprun", index=index) for index in NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
