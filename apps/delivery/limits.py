"""How fast deliveries may go out: layered send rate limits on the product's one limiter
(``apps.core.shared``: GCRA, every layer judged in one atomic step across all processes).

Four layers, from ``DELIVERY_RATE_LIMITS`` (docs/configuration.md):

- ``account``: one platform account, i.e. a creator on one platform (default one direct message
  every 3 seconds, no burst); ``account:<platform>`` overrides it for one platform. This layer is
  *adaptive*: a platform's 429 (``RateLimitedSendError``) halves its rate and blocks it for the
  Retry-After; the rate grows back by itself (``limit_status`` shows the rate in force);
- ``creator``: all of a creator's accounts together;
- ``agency``: all of an agency's creators;
- ``global``: every send of this installation, whatever the agency.

A delivery whose layers are full is not sent and not charged an attempt: ``delivery_send``
gives it back with the wait, spread over the account's line (``account_turn``) so deliveries
refused together do not all come back together (services.py).
"""

from __future__ import annotations

from django.conf import settings

from apps.core.shared import LimitCheck, LimitStatus, shared_state

LAYERS = ("account", "creator", "agency", "global")
MAX_HOLD_SECONDS = 6 * 3600  # a platform's Retry-After holds an account at most this long


def _layer(name: str, scope: str, *, platform: str | None = None, adaptive: bool = False) -> LimitCheck:
    limits = settings.DELIVERY_RATE_LIMITS
    config = (platform and limits.get(f"{name}:{platform}")) or limits[name]
    return LimitCheck(
        f"delivery:{scope}", int(config["limit"]), float(config["seconds"]), config.get("burst"), adaptive=adaptive
    )


def account_layer(*, creator_id: int, platform: str) -> LimitCheck:
    return _layer("account", f"account:{creator_id}:{platform}", platform=platform, adaptive=True)


def send_layers(*, agency_id: int, creator_id: int, platform: str) -> list[LimitCheck]:
    return [
        account_layer(creator_id=creator_id, platform=platform),
        _layer("creator", f"creator:{creator_id}"),
        _layer("agency", f"agency:{agency_id}"),
        _layer("global", "global"),
    ]


def send_admit(*, agency_id: int, creator_id: int, platform: str, count: int = 1) -> float | None:
    """Count ``count`` sends in every layer (None), or count nothing and answer the seconds to
    wait. More than the smallest burst of the layers is never admitted (see ``batch_size``)."""
    layers = send_layers(agency_id=agency_id, creator_id=creator_id, platform=platform)
    return shared_state().hit_limits_sync(layers, count)


def batch_size(*, agency_id: int, creator_id: int, platform: str, most: int) -> int:
    """The most sends that can be admitted at once for an account: its layers' smallest burst."""
    layers = send_layers(agency_id=agency_id, creator_id=creator_id, platform=platform)
    return max(1, min(most, *(layer.burst_size for layer in layers)))


def account_turn(*, creator_id: int, platform: str, wait: float) -> float:
    """When a delivery the layers (or the breaker) held back for ``wait`` comes back. Every
    delivery refused at the same moment is told the same wait, so they would all come back at
    once, one would pass and the rest be refused again: N deliveries cost ~N²/2 task runs. Each
    takes a place in the account's line instead (a counter that lives as long as this round of
    refusals) and comes back one account interval after the one before it: after ``wait`` plus
    at most the longest retry backoff (DELIVERY_RETRY_MAX_SECONDS), however long the line."""
    interval = account_layer(creator_id=creator_id, platform=platform).interval
    place = shared_state().incr_sync(f"delivery:deferred:{creator_id}:{platform}", max(1.0, wait + interval))
    return wait + min((place - 1) * interval, settings.DELIVERY_RETRY_MAX_SECONDS)


def account_slow_down(*, creator_id: int, platform: str, retry_after: float | None) -> None:
    """The platform answered 429: halve the account's rate and hold it for the Retry-After."""
    shared_state().penalize_sync(
        account_layer(creator_id=creator_id, platform=platform), min(retry_after or 0.0, MAX_HOLD_SECONDS)
    )


def account_status(*, creator_id: int, platform: str) -> LimitStatus:
    """The account's send rate in force now (lower than configured after a 429) and its wait."""
    return shared_state().limit_status_sync(account_layer(creator_id=creator_id, platform=platform))
