"""Every change to an agency's AI connections moves its credentials version once committed, however
it was made: the settings page (apps/ai/services.py, which also moves it at once), the admin, or
a cascade (an agency deleted). Each process's providers (apps/ai/registry.py) and moderation
endpoint (apps/ai/moderation.py) are rebuilt from the rows when they see the version move."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.ai.models import ProviderCredential

# What "Test connection" writes: a report about the credential, not the credential. Moving the
# version for it would make every process rebuild the agency's providers and close their clients.
TEST_REPORT_FIELDS = frozenset({"last_tested_at", "last_test_ok", "last_test_message", "last_test_latency_ms"})


@receiver(post_save, sender=ProviderCredential, dispatch_uid="ai.credential_saved")
@receiver(post_delete, sender=ProviderCredential, dispatch_uid="ai.credential_deleted")
def credential_changed(sender, instance: ProviderCredential, using: str, **kwargs) -> None:
    from apps.ai.services import bump_credentials_version

    update_fields = kwargs.get("update_fields")
    if update_fields and set(update_fields) <= TEST_REPORT_FIELDS:
        return
    agency_id = instance.agency_id
    # Robust: the change is committed whatever the cache says; a bump that fails (Redis down) is
    # logged, the request goes on, and the copies expire on their own (apps/ai/moderation.py).
    transaction.on_commit(lambda: bump_credentials_version(agency_id), using=using, robust=True)
