"""Every change to an agency's AI connections moves its credentials version once committed, however
it was made: the settings page (apps/ai/services.py, which also moves it at once), the admin, or
a cascade (an agency deleted). Each process's providers (apps/ai/registry.py) and moderation
endpoint (apps/ai/moderation.py) are rebuilt from the rows when they see the version move."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.ai.models import ProviderCredential


@receiver(post_save, sender=ProviderCredential, dispatch_uid="ai.credential_saved")
@receiver(post_delete, sender=ProviderCredential, dispatch_uid="ai.credential_deleted")
def credential_changed(sender, instance: ProviderCredential, **kwargs) -> None:
    from apps.ai.services import bump_credentials_version

    agency_id = instance.agency_id
    transaction.on_commit(lambda: bump_credentials_version(agency_id))
