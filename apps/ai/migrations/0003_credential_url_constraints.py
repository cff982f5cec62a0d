"""The database states the rule 0002 enforced on existing rows: a base URL only on an
OpenAI-compatible connection, an endpoint only on an Azure one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ai", "0002_credential_url_per_kind")]

    operations = [
        migrations.AddConstraint(
            model_name="providercredential",
            constraint=models.CheckConstraint(
                condition=models.Q(("base_url", ""), ("kind", "openai_compatible"), _connector="OR"),
                name="credential_base_url_compatible_only",
                violation_error_message="Only an OpenAI-compatible server takes a base URL.",
            ),
        ),
        migrations.AddConstraint(
            model_name="providercredential",
            constraint=models.CheckConstraint(
                condition=models.Q(("azure_endpoint", ""), ("kind", "azure"), _connector="OR"),
                name="credential_endpoint_azure_only",
                violation_error_message="Only Azure OpenAI takes an endpoint.",
            ),
        ),
    ]
