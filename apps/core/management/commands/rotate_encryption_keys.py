"""Re-encrypt every stored secret with the newest key in ENCRYPTION_KEYS (see apps/core/crypto.py).

Put the new key first in ENCRYPTION_KEYS (keeping the old ones after it), run this command,
then remove the old keys. It reads and writes the ciphertext directly, row by row, in one
transaction per table; a row whose secret changed since it was read (saved with the newest key
meanwhile) is left as it is.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from apps.core.crypto import EncryptedTextField, rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first (newest) key of ENCRYPTION_KEYS."

    def handle(self, *args, **options) -> None:
        total = 0
        quote = connection.ops.quote_name
        for model in apps.get_models():
            columns = [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not columns:
                continue
            table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
            with transaction.atomic(), connection.cursor() as cursor:
                for column in columns:
                    col = quote(column)
                    cursor.execute(f"SELECT {pk}, {col} FROM {table} WHERE {col} <> ''")  # noqa: S608 (names from the model)
                    for row_id, ciphertext in cursor.fetchall():
                        # Only if the row still holds what was read: a secret saved meanwhile (a
                        # token refresh) is already under the newest key, and writing back the
                        # rotated old one would undo it.
                        cursor.execute(
                            f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s",  # noqa: S608
                            [rotate(ciphertext), row_id, ciphertext],
                        )
                        total += cursor.rowcount
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secret(s) with the newest key."))
