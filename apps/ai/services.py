"""Writes for the AI gateway's settings: an agency's own provider credentials, and testing them.

Rules the database cannot state: a URL only where the kind takes one (the database states that
too) and only where the egress policy allows (apps/ai/egress.py); a stored key is sent to a new
URL or provider only when it is typed in again; "Test connection" reports the error kind and
HTTP status in its own words, never the provider's answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require, require_verified
from apps.ai import egress, moderation
from apps.ai.models import URL_FIELD_BY_KIND, URL_FIELDS, ProviderCredential, ProviderKind
from apps.ai.registry import credentials_version_key, provider_from_config, registry
from apps.ai.types import AIError, AIRequest, ErrorKind, Message
from apps.core.errors import ApplicationError, ConflictError

CREDENTIAL_FIELDS = (
    "kind", "label", "api_key", "base_url", "azure_endpoint", "azure_api_version",
    "model_names", "priority", "is_enabled",
)  # fmt: skip
TEST_TIMEOUT = 15.0  # at most; AI_TIMEOUT_SECONDS when shorter
WRONG_KIND_MESSAGES = {
    "base_url": "Only an OpenAI-compatible server takes a base URL.",
    "azure_endpoint": "Only Azure OpenAI takes an endpoint.",
}


def bump_credentials_version(agency_id: int) -> None:
    """Make every process rebuild this agency's providers (and moderation endpoint) on its next
    AI call: the services call it at once, apps/ai/receivers.py on every commit that changed a
    credential."""
    key = credentials_version_key(agency_id)
    try:
        cache.incr(key)
    except ValueError:  # no version yet, or the cache lost it (a flush, a restart): start from the
        # clock, never from a number an idle process may still hold from before
        cache.set(key, time.time_ns(), timeout=None)
    registry.forget_version(agency_id)
    moderation.forget(agency_id)


def credential_urls_check(*, kind: str, base_url: str = "", azure_endpoint: str = "") -> None:
    """A URL only in the field its kind takes, pointing only where the egress policy allows
    (apps/ai/egress.py). The settings form runs it too, so the member sees it on the field."""
    values = {"base_url": base_url, "azure_endpoint": azure_endpoint}
    allowed = URL_FIELD_BY_KIND.get(kind)
    for field in URL_FIELDS:
        if values[field] and field != allowed:
            raise ApplicationError(WRONG_KIND_MESSAGES[field], field=field)
    if allowed and values[allowed]:
        try:
            egress.check_url(values[allowed])
        except egress.RefusedURL as refusal:
            raise egress.RefusedURL(refusal.message, field=allowed) from None


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
    credential_urls_check(
        kind=kind, base_url=data.get("base_url") or "", azure_endpoint=data.get("azure_endpoint") or ""
    )


def _require_key_to_redirect(credential: ProviderCredential, new: dict[str, Any]) -> None:
    """The stored key goes only where it went when it was typed in: sending it to another URL
    (or another provider) takes someone who knows it, not just someone allowed to edit."""
    if not credential.api_key or new.get("api_key"):
        return
    if any((new.get(field) or "") != getattr(credential, field) for field in URL_FIELDS):
        raise ApplicationError("Enter the API key again to change the URL.", field="api_key")
    if new.get("kind", credential.kind) != credential.kind:
        raise ApplicationError("Enter the API key again to change the provider.", field="api_key")


def credential_create(*, membership: Membership, data: dict[str, Any]) -> ProviderCredential:
    require(membership, Perm.EDIT)
    require_verified(membership.user)
    values = {key: data[key] for key in CREDENTIAL_FIELDS if key in data}
    _validate(values, creating=True)
    try:
        with transaction.atomic():
            credential = ProviderCredential.objects.create(agency_id=membership.agency_id, **values)
    except IntegrityError:
        raise ConflictError("Another connection already uses that name.", field="label") from None
    bump_credentials_version(membership.agency_id)
    return credential


def credential_update(
    *, membership: Membership, credential: ProviderCredential, data: dict[str, Any]
) -> ProviderCredential:
    """Update a connection; an empty ``api_key`` keeps the stored one, unless the URL or the
    provider changes. Nothing is changed, not even in memory, when a rule refuses."""
    require(membership, Perm.EDIT)
    require_verified(membership.user)
    values = {key: data[key] for key in CREDENTIAL_FIELDS if key in data and not (key == "api_key" and not data[key])}
    merged = {key: getattr(credential, key) for key in CREDENTIAL_FIELDS} | values
    _require_key_to_redirect(credential, merged | {"api_key": values.get("api_key", "")})
    _validate(merged, creating=False)
    for key, value in values.items():
        setattr(credential, key, value)
    try:
        with transaction.atomic():
            credential.save(update_fields=[*values, "updated_at"])
    except IntegrityError:
        raise ConflictError("Another connection already uses that name.", field="label") from None
    bump_credentials_version(membership.agency_id)
    return credential


def credential_delete(*, membership: Membership, credential: ProviderCredential) -> None:
    require(membership, Perm.EDIT)
    credential.delete()
    bump_credentials_version(membership.agency_id)


# What "Test connection" says about each failure: our words, the kind and the HTTP status, never
# the provider's answer (a URL pointed at an internal service would otherwise read it back).
FAILURE_HINTS = {
    ErrorKind.AUTHENTICATION: "the provider refused the key.",
    ErrorKind.RATE_LIMIT: "the provider is limiting requests; try again later.",
    ErrorKind.INVALID_REQUEST: "the provider refused the request; check the model names.",
    ErrorKind.SERVER_ERROR: "the provider failed to answer.",
    ErrorKind.NETWORK_ERROR: "the provider could not be reached.",
    ErrorKind.TIMEOUT: "the provider did not answer in time.",
    ErrorKind.CONTENT_FILTER: "the provider's filter refused the test prompt.",
    ErrorKind.UNKNOWN: "the provider's answer was not understood.",
}


def _failure_message(error: AIError) -> str:
    refusal = egress.refusal_in(error)
    if refusal is not None:
        return f"Not connected: {refusal.message}"
    status = f" (HTTP {error.status_code})" if error.status_code else ""
    return f"{error.kind.value}{status}: {FAILURE_HINTS[error.kind]}"


async def _probe(credential: ProviderCredential) -> tuple[bool, str, float]:
    provider = provider_from_config(
        name=credential.provider_name, kind=credential.kind, models=tuple(credential.model_names),
        api_key=credential.api_key, base_url=credential.base_url, azure_endpoint=credential.azure_endpoint,
        api_version=credential.azure_api_version, guarded=True,
    )  # fmt: skip
    request = AIRequest(feature="settings.test", messages=[Message("user", "Reply with the word: ok")], max_tokens=5)
    timeout = min(float(settings.AI_TIMEOUT_SECONDS), TEST_TIMEOUT)
    started = time.perf_counter()
    try:
        # The whole call, not each read: a server dripping its answer a byte at a time cannot hold
        # the request (and its thread) for ever.
        async with asyncio.timeout(timeout):
            await provider.complete(request, credential.model_names[0], timeout=timeout)
    except TimeoutError:
        error = AIError(ErrorKind.TIMEOUT, "The provider did not answer in time.")
        return False, _failure_message(error), (time.perf_counter() - started) * 1000
    except AIError as error:
        return False, _failure_message(error), (time.perf_counter() - started) * 1000
    finally:
        await provider.aclose()
    latency = (time.perf_counter() - started) * 1000
    return True, f"Connected: {credential.model_names[0]} answered in {latency:.0f} ms.", latency


def credential_test(*, membership: Membership, credential: ProviderCredential) -> ProviderCredential:
    """Call the provider once with a tiny prompt; store and return the outcome (latency or typed
    error). A URL the egress policy refuses is reported without connecting."""
    require(membership, Perm.EDIT)
    url_field = URL_FIELD_BY_KIND.get(credential.kind)
    url = getattr(credential, url_field) if url_field else ""
    try:
        if url:
            egress.check_url(url)
    except egress.RefusedURL as refusal:
        ok, message, latency = False, f"Not connected: {refusal.message}", 0.0
    else:
        ok, message, latency = async_to_sync(_probe)(credential)
    credential.last_tested_at = timezone.now()
    credential.last_test_ok = ok
    credential.last_test_message = message[:300]
    credential.last_test_latency_ms = round(latency, 1)
    credential.save(update_fields=["last_tested_at", "last_test_ok", "last_test_message", "last_test_latency_ms"])
    return credential
