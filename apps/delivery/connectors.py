"""The connector interface: how a delivery reaches a platform.

A connector sends one ``Delivery`` to its platform and answers a ``SendResult``, or raises
``PermanentSendError`` (the platform will never take it: fan blocked or unsubscribed, text
refused) or ``RetryableSendError`` (try again later: platform down, timeout; with ``retry_after``
when the platform said how long to wait), or its subclass ``RateLimitedSendError`` for a 429. A connector must pass
``delivery.idempotency_key`` (qualified by the agency, e.g. with ``delivery.agency_id``) to the
platform so that sending the same delivery twice (a worker killed after the platform accepted it)
gives the same platform message, not a second one.

A connector whose platform has a *mass message* endpoint (one request carrying many fans' ids
and one text, as OnlyFans' and Fansly's mass messages) sets ``supports_mass`` and implements
``send_mass``: it answers a ``MassSendResult`` (the platform's mass-message id and, when the
platform says, the fans it accepted or rejected) or raises the same errors as ``send``, and
passes the mass delivery's idempotency key as ``send`` does. ``mass_supported(platform)`` tells
a higher layer, before it creates anything, whether a mass message can go to a platform.

Which connector serves a platform comes from the ``DELIVERY_CONNECTORS`` setting (platform →
dotted path of a ``Connector`` subclass, built with ``platform=``). A platform missing from it is
served by the simulated connector (apps/delivery/simulated.py). Higher layers (apps.integrations)
are named there by the project's settings; this module never imports them.

Text limits live in ``PLATFORM_LIMITS``, one table for every platform. They are the *simulated
limits until real connectors exist*; a real connector may state its own ``max_text_length``.
This module does not rate-limit, retry or record anything: limits.py, services.py and tasks.py do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from apps.accounts.models import PLATFORMS
from apps.core.errors import ApplicationError

if TYPE_CHECKING:
    from apps.delivery.models import Delivery

DEFAULT_CONNECTOR = "apps.delivery.simulated.SimulatedConnector"


@dataclass(frozen=True)
class PlatformLimits:
    max_text_length: int  # characters of one direct message


# Simulated limits until real connectors exist (docs/delivery.md). Every platform of
# apps.accounts.models.PLATFORMS has a row; tests check it.
PLATFORM_LIMITS: dict[str, PlatformLimits] = {
    "onlyfans": PlatformLimits(max_text_length=1000),
    "fansly": PlatformLimits(max_text_length=1500),
    "instagram": PlatformLimits(max_text_length=1000),
    "x": PlatformLimits(max_text_length=10_000),
    "tiktok": PlatformLimits(max_text_length=6000),
    "reddit": PlatformLimits(max_text_length=10_000),
}


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str
    sent_at: datetime


@dataclass(frozen=True)
class MassSendResult(SendResult):
    """A mass message the platform took. ``rejected``: fans it refused (blocked the creator,
    unsubscribed); ``accepted``: the fans it took, when it lists them (None: it did not say, so
    every fan not rejected counts as reached)."""

    rejected: tuple[str, ...] = ()
    accepted: tuple[str, ...] | None = None

    def refused(self, recipient_ids: Sequence[str]) -> set[str]:
        """Of ``recipient_ids``, those the platform did not take."""
        refused = set(self.rejected)
        if self.accepted is not None:
            refused |= set(recipient_ids) - set(self.accepted)
        return refused & set(recipient_ids)


class SendError(ApplicationError):
    """A connector could not send. ``retryable`` says whether trying again may succeed."""

    code = "delivery_failed"
    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message, extra=extra)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """The platform will never accept this delivery (fan blocked or gone, text refused)."""

    code = "delivery_permanent"
    retryable = False


class RetryableSendError(SendError):
    """Try again later (rate limited, platform unavailable, timeout); ``retry_after`` in seconds
    when the platform said how long to wait."""

    code = "delivery_retryable"
    retryable = True


class RateLimitedSendError(RetryableSendError):
    """The platform said "too many requests" (HTTP 429), with ``retry_after`` when it gave one.
    Besides the retry, the account's send rate is halved for a while (apps/delivery/limits.py)."""

    code = "delivery_rate_limited"


class UnknownPlatformError(ApplicationError):
    code = "unknown_platform"


class MassUnsupportedError(ApplicationError):
    """The platform's connector has no mass message: send one direct message per fan instead."""

    code = "mass_unsupported"


class Connector(ABC):
    """Sends deliveries to one platform. Built once per process and platform: keep no per-send
    state on the instance."""

    platform: str
    max_text_length: int
    supports_mass: bool = False  # True when send_mass reaches a platform-side mass message

    def __init__(self, *, platform: str):
        if platform not in PLATFORM_LIMITS:
            raise UnknownPlatformError(f"No text limit is known for platform {platform!r}.", field="platform")
        self.platform = platform
        self.max_text_length = PLATFORM_LIMITS[platform].max_text_length

    @abstractmethod
    def send(self, delivery: Delivery) -> SendResult:
        """Send ``delivery`` once (idempotently, by its key) or raise a ``SendError``."""

    def send_many(self, deliveries: list[Delivery]) -> list[SendResult | Exception]:
        """Send several deliveries of one account (the pump's batch): one outcome per delivery,
        in order, a ``SendResult`` or the exception its send raised. One by one unless the
        platform has a batch endpoint; a connector that has one overrides this."""
        outcomes: list[SendResult | Exception] = []
        for delivery in deliveries:
            try:
                outcomes.append(self.send(delivery))
            except Exception as error:
                outcomes.append(error)
        return outcomes

    def send_mass(self, delivery: Delivery, recipient_ids: Sequence[str]) -> MassSendResult:
        """Send the mass delivery ``delivery`` (its text, PPV price and media count) to the fans
        ``recipient_ids`` in one platform request, idempotently by its key, or raise a
        ``SendError``. Only for a connector that sets ``supports_mass``."""
        raise PermanentSendError(mass_unsupported_message(self.platform))


def connector_paths() -> dict[str, str]:
    """Platform → dotted path of its connector: the setting, the simulated one elsewhere."""
    configured = dict(getattr(settings, "DELIVERY_CONNECTORS", {}) or {})
    return {platform: configured.get(platform, DEFAULT_CONNECTOR) for platform in PLATFORMS}


@cache
def connector_for(platform: str) -> Connector:
    """The connector serving ``platform``; ``UnknownPlatformError`` for a platform we do not know."""
    path = connector_paths().get(platform)
    if path is None:
        raise UnknownPlatformError(f"Messages cannot be sent to {platform!r}: no such platform.", field="platform")
    connector = import_string(path)(platform=platform)
    if not isinstance(connector, Connector):
        raise TypeError(f"DELIVERY_CONNECTORS[{platform!r}] = {path!r} is not an apps.delivery Connector.")
    return connector


def text_limit(platform: str) -> int:
    """The longest message text ``platform`` takes, in characters. Call it to validate a message
    before creating anything; ``delivery_enqueue`` checks the same limit."""
    return connector_for(platform).max_text_length


def mass_unsupported_message(platform: str) -> str:
    name = PLATFORMS.get(platform, platform)
    return f"{name} takes no platform-side mass message here; send one direct message per fan instead."


def mass_supported(platform: str) -> bool:
    """Whether a mass message can go to ``platform`` (its connector has a mass endpoint)."""
    return connector_for(platform).supports_mass


def require_mass(platform: str) -> None:
    """``MassUnsupportedError`` (field ``platform``) unless a mass message can go to ``platform``."""
    if not mass_supported(platform):
        raise MassUnsupportedError(mass_unsupported_message(platform), field="platform")


def _forget_connectors(*, setting: str, **_: object) -> None:
    if setting == "DELIVERY_CONNECTORS":
        connector_for.cache_clear()


setting_changed.connect(_forget_connectors, dispatch_uid="delivery.forget_connectors")
