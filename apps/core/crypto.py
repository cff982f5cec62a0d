"""Secrets at rest: Fernet encryption with key rotation (cryptography's MultiFernet).

ENCRYPTION_KEYS holds one or more Fernet keys, newest first: the newest encrypts, every key
decrypts, so a key is rotated by putting a new one in front and running
``manage.py rotate_encryption_keys`` (re-encrypts every stored secret with the newest key)
before removing the old one. ``EncryptedTextField`` stores ciphertext and hands out plaintext.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = settings.ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None


def reset_keys_cache() -> None:
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in ENCRYPTION_KEYS (was a key removed too early?)."
        ) from None


def rotate(ciphertext: str) -> str:
    return _fernet().rotate(ciphertext.encode()).decode()


class EncryptedTextField(models.TextField):
    """Plaintext in Python, Fernet ciphertext in the database. Empty strings stay empty."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
