"""A custom URL only where the kind takes one (issue 8): OpenAI and Anthropic connections always
talk to the provider's own API. Rows saved before with a URL on another kind lose it, so that
connection keeps working against the real provider instead of a server someone typed in. Failed
"Test connection" messages written before quoted the provider's answer, which may be an internal
service's reply: they are cleared (the connection shows "not tested" until tested again).

0003 adds the check constraints: in a migration of its own, because PostgreSQL refuses to alter a
table with trigger events (deferred foreign keys) still pending from these updates."""

from django.db import migrations


def clear_urls_on_other_kinds(apps, schema_editor):
    ProviderCredential = apps.get_model("ai", "ProviderCredential")
    ProviderCredential.objects.exclude(kind="openai_compatible").exclude(base_url="").update(base_url="")
    ProviderCredential.objects.exclude(kind="azure").exclude(azure_endpoint="").update(azure_endpoint="")
    ProviderCredential.objects.filter(last_test_ok=False).update(
        last_tested_at=None, last_test_ok=None, last_test_message="", last_test_latency_ms=None
    )


class Migration(migrations.Migration):
    dependencies = [("ai", "0001_initial")]

    operations = [migrations.RunPython(clear_urls_on_other_kinds, migrations.RunPython.noop)]
