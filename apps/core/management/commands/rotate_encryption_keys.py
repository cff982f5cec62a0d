"""Re-encrypt every stored secret with the newest key in ENCRYPTION_KEYS (see apps/core/crypto.py)."""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core.crypto import EncryptedTextField, rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first (newest) key of ENCRYPTION_KEYS."

    def handle(self, *args, **options) -> None:
        total = 0
        for model in apps.get_models():
            fields = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            with transaction.atomic():
                # Read the ciphertext as stored (values() skips from_db_value) and rotate it.
                for row in model._base_manager.select_for_update().values("pk", *fields):
                    updates = {name: rotate(row[name]) for name in fields if row[name]}
                    if updates:
                        model._base_manager.filter(pk=row["pk"]).update(**{k: _Raw(v) for k, v in updates.items()})
                        total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} row(s) with the newest key."))


class _Raw(str):
    """Marks an already-encrypted value so EncryptedTextField does not encrypt it twice."""

    already_encrypted = True
