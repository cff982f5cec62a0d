"""Core's own tables: the shared state of the embedded default when there is no Redis."""

from __future__ import annotations

from django.db import models


class SharedKey(models.Model):
    """Counters and small records shared by all processes when there is no Redis.

    See apps/core/shared.py; expired rows are ignored and deleted by ``purge_expired_shared_keys``.
    """

    key = models.CharField(max_length=200, primary_key=True)
    count = models.BigIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key
