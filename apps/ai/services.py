"""Writes for the AI gateway's settings: an agency's own provider credentials, and testing them."""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.ai.models import ProviderCredential, ProviderKind
from apps.ai.registry import credentials_version_key, provider_from_config, registry
from apps.ai.types import AIError, AIRequest, Message
from apps.core.errors import ApplicationError, ConflictError

CREDENTIAL_FIELDS = (
    "kind", "label", "api_key", "base_url", "azure_endpoint", "azure_api_version",
    "model_names", "priority", "is_enabled",
)  # fmt: skip
TEST_TIMEOUT = 15.0


def _bump_version(agency_id: int) -> None:
    """Make every process rebuild this agency's providers on its next AI call."""
    key = credentials_version_key(agency_id)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)
    registry.forget_version(agency_id)


def _validate(data: dict[str, Any], *, creating: bool) -> None:
    kind = data.get("kind")
    if kind not in ProviderKind.values:
        raise ApplicationError("Choose a provider type.", field="kind")
    if not data.get("model_names"):
        raise ApplicationError("List at least one model (or Azure deployment) name.", field="model_names")
    if (
        kind in {ProviderKind.OPENAI, ProviderKind.ANTHROPIC, ProviderKind.AZURE}
        and creating
        and not data.get("api_key")
    ):
        raise ApplicationError("Paste the API key for this provider.", field="api_key")
    if kind == ProviderKind.OPENAI_COMPATIBLE and not data.get("base_url"):
        raise ApplicationError("An OpenAI-compatible server needs its base URL.", field="base_url")
    if kind == ProviderKind.AZURE and not (data.get("azure_endpoint") and data.get("azure_api_version")):
        raise ApplicationError("Azure OpenAI needs its endpoint and API version.", field="azure_endpoint")


def credential_create(*, membership: Membership, data: dict[str, Any]) -> ProviderCredential:
    require(membership, Perm.EDIT)
    values = {key: data[key] for key in CREDENTIAL_FIELDS if key in data}
    _validate(values, creating=True)
    try:
        with transaction.atomic():
            credential = ProviderCredential.objects.create(agency_id=membership.agency_id, **values)
    except IntegrityError:
        raise ConflictError("Another connection already uses that name.", field="label") from None
    _bump_version(membership.agency_id)
    return credential


def credential_update(
    *, membership: Membership, credential: ProviderCredential, data: dict[str, Any]
) -> ProviderCredential:
    """Update a connection; an empty ``api_key`` keeps the stored one."""
    require(membership, Perm.EDIT)
    changed = [key for key in CREDENTIAL_FIELDS if key in data and not (key == "api_key" and not data[key])]
    for key in changed:
        setattr(credential, key, data[key])
    _validate({key: getattr(credential, key) for key in CREDENTIAL_FIELDS}, creating=False)
    try:
        with transaction.atomic():
            credential.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise ConflictError("Another connection already uses that name.", field="label") from None
    _bump_version(membership.agency_id)
    return credential


def credential_delete(*, membership: Membership, credential: ProviderCredential) -> None:
    require(membership, Perm.EDIT)
    credential.delete()
    _bump_version(membership.agency_id)


async def _probe(credential: ProviderCredential) -> tuple[bool, str, float]:
    provider = provider_from_config(
        name=credential.provider_name, kind=credential.kind, models=tuple(credential.model_names),
        api_key=credential.api_key, base_url=credential.base_url, azure_endpoint=credential.azure_endpoint,
        api_version=credential.azure_api_version,
    )  # fmt: skip
    request = AIRequest(feature="settings.test", messages=[Message("user", "Reply with the word: ok")], max_tokens=5)
    started = time.perf_counter()
    try:
        await provider.complete(request, credential.model_names[0], timeout=TEST_TIMEOUT)
    except AIError as error:
        return False, f"{error.kind.value}: {error.message}"[:300], (time.perf_counter() - started) * 1000
    finally:
        await provider.aclose()
    latency = (time.perf_counter() - started) * 1000
    return True, f"Connected: {credential.model_names[0]} answered in {latency:.0f} ms.", latency


def credential_test(*, membership: Membership, credential: ProviderCredential) -> ProviderCredential:
    """Call the provider once with a tiny prompt; store and return the outcome (latency or typed error)."""
    require(membership, Perm.EDIT)
    ok, message, latency = async_to_sync(_probe)(credential)
    credential.last_tested_at = timezone.now()
    credential.last_test_ok = ok
    credential.last_test_message = message
    credential.last_test_latency_ms = round(latency, 1)
    credential.save(update_fields=["last_tested_at", "last_test_ok", "last_test_message", "last_test_latency_ms"])
    return credential
