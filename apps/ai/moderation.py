"""An outside moderation check of generated text: OpenAI's moderation endpoint (or an
OpenAI-compatible server's), through the official ``openai`` SDK.

``moderate(agency_id=…, texts=[…])`` answers, for each text, the categories the endpoint flagged
(OpenAI's names: ``sexual/minors``, ``violence`` …), or ``None`` when there is no answer:

* no provider with a moderation endpoint is configured: the agency's own enabled OpenAI or
  OpenAI-compatible credential (by priority), else the platform's ``OPENAI_API_KEY`` /
  ``OPENAI_BASE_URL``, else ``OPENAI_COMPATIBLE_BASE_URL``. Azure and Anthropic have no such
  endpoint, and the built-in provider needs none;
* the call fails (timeout, network, an error status, a server without the endpoint, an answer
  not in OpenAI's shape): logged, and the caller keeps its local rules (apps.safety), which
  always run. Moderation fails open because it is a second opinion, not the policy.

With a cache every process shares (Redis), the agency's credential is looked up once per process
and then trusted as the AI registry trusts its providers: until the agency's credentials version
in the shared cache moves (every save or delete of a credential moves it once committed, through
the services, the admin or a cascade: apps/ai/receivers.py), re-read at most every
``VERSION_SNAPSHOT_SECONDS`` (apps/ai/registry.py), and never kept longer than
``ENDPOINT_MAX_AGE_SECONDS`` whatever the version says (a change written straight in the
database). So a key changed on the settings page reaches moderation within two seconds, as it
reaches the chat calls. Before, every finished studio answer paid an ORM query for it (about a
tenth of a server's CPU in a burst of streams on PostgreSQL). With the local-memory cache of the
embedded default each process has a cache of its own, where another process's change would never
show, so the credential is read at every call, as before; so it is when the cache cannot be read.

An agency's own credential is held to the egress policy of apps/ai/egress.py like its chat calls:
the URL's scheme and credentials are checked just before the call, and the connection resolves the
host once, checks every address and connects only to one it checked (``guarded_sync_client``), so
a name that answers a public address to a check and an internal one to the connection (DNS
rebinding) reaches nothing; redirects are not followed and no proxy from the environment is used.
So the moderation request cannot carry the key or the text to an internal address either. Its
call as a whole (connecting, sending, reading the answer) ends at the timeout, however slowly the
server drips its answer, and then fails open as any timeout does.

What it does not do: decide anything. Features map categories to their own rules (the studio
refuses ``sexual/minors``; see apps/studio/services.py). The call is synchronous (a Celery task or
a ``sync_to_async`` thread), with the SDK's retries off and a timeout of at most 10 seconds (for
the whole call on an agency's endpoint; per read on the platform's, the operator's own); it is
not recorded in the AI ledger because moderation is not billed per token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import lru_cache

import openai
from django.conf import settings
from django.core.cache import cache

from apps.ai.egress import RefusedURL, check_url, guarded_sync_client, policy_check, refusal_in
from apps.ai.registry import VERSION_SNAPSHOT_SECONDS, credentials_version_key

logger = logging.getLogger(__name__)

MODEL = "omni-moderation-latest"
MAX_TIMEOUT_SECONDS = 10.0


# agency id -> (when its version was last read, that version, when the rows were read (both
# monotonic), its endpoint or None)
_agency_endpoints: dict[int, tuple[float, int, float, dict | None]] = {}
AGENCY_ENDPOINTS_MAX = 4096
ENDPOINT_MAX_AGE_SECONDS = 60.0


def _agency_endpoint_load(agency_id: int) -> dict | None:
    from apps.ai.models import ProviderCredential, ProviderKind

    credential = (
        ProviderCredential.objects.for_agency(agency_id)
        .filter(is_enabled=True, kind__in=[ProviderKind.OPENAI, ProviderKind.OPENAI_COMPATIBLE])
        .order_by("priority", "id")
        .first()
    )
    if credential is None:
        return None
    return {"name": credential.provider_name, "api_key": credential.api_key, "base_url": credential.base_url,
            "agency": True}  # fmt: skip


def _cache_is_shared() -> bool:
    """Whether Django's cache is one every process reads (Redis, files, a table), not a per-process memory."""
    backend = settings.CACHES["default"]["BACKEND"]
    return not backend.endswith((".LocMemCache", ".DummyCache"))


def _agency_endpoint(agency_id: int) -> dict | None:
    """The agency's own moderation endpoint, from this process's copy while the agency's
    credentials version has not moved (see the module docstring)."""
    if not _cache_is_shared():
        return _agency_endpoint_load(agency_id)
    now = time.monotonic()
    held = _agency_endpoints.get(agency_id)
    if held is not None and now - held[2] >= ENDPOINT_MAX_AGE_SECONDS:
        held = None
    if held is not None and now - held[0] < VERSION_SNAPSHOT_SECONDS:
        return held[3]
    try:
        # The version is read before the rows: a change committed in between is seen at the next read.
        version = cache.get(credentials_version_key(agency_id), 0)
    except Exception:  # the cache is down: the database is the truth, and moderation goes on
        logger.warning("credentials version unreadable; moderation endpoint read from the database",
                       extra={"agency_id": agency_id}, exc_info=True)  # fmt: skip
        return _agency_endpoint_load(agency_id)
    if held is not None and held[1] == version:
        _agency_endpoints[agency_id] = (now, version, held[2], held[3])
        return held[3]
    endpoint = _agency_endpoint_load(agency_id)
    if len(_agency_endpoints) >= AGENCY_ENDPOINTS_MAX:
        _agency_endpoints.clear()
    _agency_endpoints[agency_id] = (now, version, now, endpoint)
    return endpoint


def forget(agency_id: int | None = None) -> None:
    """Drop this process's copy of one agency's endpoint (its credentials changed here), or of all."""
    if agency_id is None:
        _agency_endpoints.clear()
    else:
        _agency_endpoints.pop(agency_id, None)


def moderation_config(*, agency_id: int | None) -> dict[str, str] | None:
    """The endpoint to ask for ``agency_id``: {"name", "api_key", "base_url"}, or None."""
    if agency_id is not None:
        endpoint = _agency_endpoint(agency_id)
        if endpoint is not None:
            return endpoint
    if settings.OPENAI_API_KEY:
        return {"name": "openai", "api_key": settings.OPENAI_API_KEY, "base_url": settings.OPENAI_BASE_URL}
    if settings.OPENAI_COMPATIBLE_BASE_URL:
        return {
            "name": "openai_compatible",
            "api_key": settings.OPENAI_COMPATIBLE_API_KEY,
            "base_url": settings.OPENAI_COMPATIBLE_BASE_URL,
        }
    return None


def _client(config: dict, timeout: float) -> openai.OpenAI:
    """The process's client for this endpoint and key. An agency's URL (scheme, credentials, an
    address written as such) is checked on every call, before the client is handed out; its host
    name's addresses are checked by the connection, which connects to what it checked. The client
    itself is kept, since building one (its TLS context) costs several milliseconds of CPU, more
    than the rest of a generation's completion."""
    if config.get("agency") and config["base_url"]:
        check_url(config["base_url"], resolve=False)
    return _cached_client(config["api_key"], config["base_url"], bool(config.get("agency")), timeout)


@lru_cache(maxsize=64)
def _cached_client(api_key: str, base_url: str, agency: bool, timeout: float) -> openai.OpenAI:
    """An agency's client goes through ``guarded_sync_client``, whose deadline is set per call
    (when the call starts, for the call's connection only), not when the client is built: a
    deadline fixed here would have passed for every call after the first ``timeout`` seconds of
    the client's life, and kept connections are why the client is cached at all."""
    options: dict = {}
    if agency:
        options["http_client"] = guarded_sync_client(policy_check(), timeout=timeout)
    # Local servers accept any key; the SDK insists on a non-empty one.
    return openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url or None, max_retries=0, **options)


def flagged_categories(answer: object) -> list[frozenset[str]]:
    """The flagged categories of each result of a moderation answer (OpenAI's JSON as parsed);
    TypeError when it is not in that shape, a category's flag that is not a JSON boolean included
    (a server that answers ``1`` for "flagged" is not guessed at: the call fails open, logged)."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise TypeError("the moderation answer has no list of results")
    flagged = []
    for result in results:
        categories = result.get("categories") if isinstance(result, dict) else None
        if not isinstance(categories, dict) or not all(isinstance(on, bool) for on in categories.values()):
            raise TypeError("a moderation result's categories are not an object of true/false flags")
        flagged.append(frozenset(name for name, on in categories.items() if on))
    return flagged


def moderate(*, agency_id: int | None, texts: Sequence[str]) -> list[frozenset[str]] | None:
    """The flagged categories of each text, in order, or None (see the module docstring)."""
    if not texts:
        return []
    config = moderation_config(agency_id=agency_id)
    if config is None:
        return None
    timeout = min(float(settings.AI_TIMEOUT_SECONDS), MAX_TIMEOUT_SECONDS)
    try:
        client = _client(config, timeout)
        # The SDK's own request (auth, status errors, timeout), with the answer read as a dict, as
        # the chat calls do (apps/ai/providers/openai_chat.py): the typed ModerationCreateResponse
        # and its model_dump cost a third to a half of the call's CPU, at every finished answer.
        data = client.post(
            "/moderations", body={"model": MODEL, "input": list(texts)}, cast_to=object, options={"timeout": timeout}
        )
        results = flagged_categories(data)
    except (openai.OpenAIError, RefusedURL, ValueError, TypeError, AttributeError) as error:
        error = refusal_in(error) or error  # a connection the policy refused is named as such
        logger.warning(
            "moderation unavailable, local rules only",
            extra={"provider": config["name"], "error": type(error).__name__, "agency_id": agency_id},
        )
        return None
    if len(results) != len(texts):
        logger.warning("moderation answered %d results for %d texts; ignored", len(results), len(texts))
        return None
    return results
