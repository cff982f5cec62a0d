"""Which providers a request may use: the agency's own keys, the platform's keys, the built-in.

Provider objects hold SDK clients with connection pools, which belong to one event loop, so
they are kept per loop and per agency, and rebuilt when the agency's credentials change (the
credentials services bump a version number in the cache).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from apps.ai.providers.base import Provider

PLATFORM = "platform"
# How long a process trusts its copy of an agency's credentials version before asking the
# shared cache again: a key changed on the settings page reaches other processes within this.
VERSION_SNAPSHOT_SECONDS = 2.0


def credentials_version_key(agency_id: int) -> str:
    return f"ai:credentials-version:{agency_id}"


def builtin_provider() -> Provider:
    from apps.ai.providers.builtin import BuiltinProvider

    return BuiltinProvider()


def provider_from_config(
    *, name: str, kind: str, models: tuple[str, ...], api_key: str = "", base_url: str = "",
    azure_endpoint: str = "", api_version: str = "", guarded: bool = False,
) -> Provider:  # fmt: skip
    """``guarded``: an agency's own connection, whose every request passes the egress policy
    (apps/ai/egress.py); the platform's, configured by the operator, are not."""
    if kind == "anthropic":
        from apps.ai.providers.anthropic_messages import AnthropicProvider

        return AnthropicProvider(name=name, models=models, api_key=api_key, base_url=base_url or None, guarded=guarded)
    if kind in {"openai", "azure", "openai_compatible"}:
        from apps.ai.providers.openai_chat import OpenAIChatProvider

        return OpenAIChatProvider(
            name=name, kind=kind, models=models, api_key=api_key, base_url=base_url or None,
            azure_endpoint=azure_endpoint or None, api_version=api_version or None, guarded=guarded,
        )  # fmt: skip
    if kind == "builtin":
        return builtin_provider()
    raise ValueError(f"unknown provider kind {kind!r}")


def platform_configs() -> list[dict]:
    """Providers configured by environment variables, DEFAULT_AI_PROVIDER first."""
    configs: list[dict] = []
    if settings.OPENAI_API_KEY:
        configs.append(
            {"name": "openai", "kind": "openai", "models": tuple(settings.OPENAI_MODELS),
             "api_key": settings.OPENAI_API_KEY, "base_url": settings.OPENAI_BASE_URL}
        )  # fmt: skip
    if settings.AZURE_OPENAI_API_KEY:
        configs.append(
            {"name": "azure", "kind": "azure", "models": tuple(settings.AZURE_OPENAI_DEPLOYMENTS),
             "api_key": settings.AZURE_OPENAI_API_KEY, "azure_endpoint": settings.AZURE_OPENAI_ENDPOINT,
             "api_version": settings.AZURE_OPENAI_API_VERSION}
        )  # fmt: skip
    if settings.ANTHROPIC_API_KEY:
        configs.append(
            {"name": "anthropic", "kind": "anthropic", "models": tuple(settings.ANTHROPIC_MODELS),
             "api_key": settings.ANTHROPIC_API_KEY, "base_url": settings.ANTHROPIC_BASE_URL}
        )  # fmt: skip
    if settings.OPENAI_COMPATIBLE_BASE_URL:
        configs.append(
            {"name": "openai_compatible", "kind": "openai_compatible",
             "models": tuple(settings.OPENAI_COMPATIBLE_MODELS), "api_key": settings.OPENAI_COMPATIBLE_API_KEY,
             "base_url": settings.OPENAI_COMPATIBLE_BASE_URL}
        )  # fmt: skip
    default = settings.DEFAULT_AI_PROVIDER
    if default == "builtin":
        return []
    if default:
        configs.sort(key=lambda config: config["kind"] != default)
    return configs


def _agency_configs(agency_id: int) -> list[dict]:
    from apps.ai.models import ProviderCredential

    return [
        {
            "name": credential.provider_name,
            "kind": credential.kind,
            "models": tuple(credential.model_names),
            "api_key": credential.api_key,
            "base_url": credential.base_url,
            "azure_endpoint": credential.azure_endpoint,
            "api_version": credential.azure_api_version,
            "guarded": True,
        }
        for credential in ProviderCredential.objects.for_agency(agency_id)
        .filter(is_enabled=True)
        .order_by("priority", "id")
        if credential.model_names
    ]


class ProviderRegistry:
    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task] = set()
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._retired: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Provider]] = (
            weakref.WeakKeyDictionary()
        )
        self._versions: dict[int, tuple[float, int]] = {}
        self._reading: dict[int, asyncio.Future] = {}

    async def providers_for(self, agency_id: int | None) -> list[Provider]:
        """Remote providers in priority order (the agency's own first), then the built-in one."""
        loop = asyncio.get_running_loop()
        table = self._by_loop.get(loop)
        if table is None:
            table = self._by_loop[loop] = {}
            if loop not in self._closers:
                closer = self._close_with_loop()
                await anext(closer)
                self._closers[loop] = closer
        platform = table.get(PLATFORM)
        if platform is None:
            platform = [provider_from_config(**config) for config in platform_configs()] + [builtin_provider()]
            table[PLATFORM] = platform
        if agency_id is None:
            return platform
        version = await self._version(agency_id)
        entry = table.get(agency_id)
        if entry is None or entry[0] != version:
            # One load per agency and version: concurrent callers share it (one thread hop).
            building = table.get(("building", agency_id))
            if building is None or building[0] != version:
                building = (version, asyncio.ensure_future(self._build(table, agency_id, version, platform)))
                table[("building", agency_id)] = building
            entry = await asyncio.shield(building[1])
        return entry[2]

    async def _build(self, table: dict, agency_id: int, version: int, platform: list[Provider]) -> tuple:
        try:
            configs = await sync_to_async(_agency_configs)(agency_id)
            own = [provider_from_config(**config) for config in configs]
            old = table.get(agency_id)
            if old is not None:
                loop = asyncio.get_running_loop()
                for provider in old[1]:
                    task = loop.create_task(provider.aclose())
                    self._closing.add(task)
                    task.add_done_callback(self._closing.discard)
            entry = (version, own, own + platform)
            table[agency_id] = entry
            return entry
        finally:
            if table.get(("building", agency_id), (None, None))[1] is asyncio.current_task():
                table.pop(("building", agency_id), None)

    async def _version(self, agency_id: int) -> int:
        """The agency's credentials version, read from the shared cache at most once per
        VERSION_SNAPSHOT_SECONDS per process. When the snapshot is stale, one caller reads it and
        every concurrent caller awaits that same read: fifty requests in flight when the snapshot
        expires make one cache read (a thread hop), not fifty."""
        now = time.monotonic()
        known = self._versions.get(agency_id)
        if known is not None and now - known[0] < VERSION_SNAPSHOT_SECONDS:
            return known[1]
        pending = self._reading.get(agency_id)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = asyncio.ensure_future(self._read_version(agency_id))
            self._reading[agency_id] = pending
        return await asyncio.shield(pending)

    async def _read_version(self, agency_id: int) -> int:
        try:
            version = await cache.aget(credentials_version_key(agency_id), 0)
            self._versions[agency_id] = (time.monotonic(), version)
            return version
        finally:
            if self._reading.get(agency_id) is asyncio.current_task():
                self._reading.pop(agency_id, None)

    def forget_version(self, agency_id: int) -> None:
        """This process changed the agency's credentials: re-read the version on the next call."""
        self._versions.pop(agency_id, None)
        self._reading.pop(agency_id, None)

    async def _close_with_loop(self) -> AsyncIterator[None]:
        """Suspended for the life of one loop. asyncio closes a loop's open async generators when
        the loop shuts down (``shutdown_asyncgens``: ``asyncio.run``, asgiref's ``async_to_sync``
        for Celery tasks and commands, test loops), and closing this one closes the loop's HTTP
        clients, so a short-lived loop leaves no connection behind."""
        try:
            yield
        finally:
            await self.aclose_current_loop()

    async def aclose_current_loop(self) -> None:
        """Close and forget the running loop's providers: their HTTP clients belong to it."""
        loop = asyncio.get_running_loop()
        providers = {id(p): p for p in _providers_of(self._by_loop.pop(loop, None) or {})}
        providers.update((id(p), p) for p in self._retired.pop(loop, []))
        await asyncio.gather(*(provider.aclose() for provider in providers.values()), return_exceptions=True)

    def reset(self) -> None:
        """Forget every provider (tests change settings between cases). Their clients are closed
        by the next ``aclose_current_loop()`` on their loop."""
        for loop, table in list(self._by_loop.items()):
            self._retired.setdefault(loop, []).extend(_providers_of(table))
        self._by_loop = weakref.WeakKeyDictionary()
        self._versions.clear()
        self._reading.clear()


def _providers_of(table: dict) -> list[Provider]:
    """Every provider in one loop's table: the platform's, and each agency's own."""
    providers = list(table.get(PLATFORM, []))
    for key, value in table.items():
        if key != PLATFORM and not isinstance(key, tuple):
            providers += value[1]
    return providers


registry = ProviderRegistry()
