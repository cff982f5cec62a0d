"""A circuit breaker per platform: when a platform fails most sends, stop sending to it for a
while instead of spending every delivery's attempts (and making them dead letters), then try
one send and resume when it goes through.

States, kept in the shared state (apps.core.shared) so every worker agrees:

- **closed**: sends go out. Each window of ``WINDOW_SECONDS`` counts the platform's sends and
  its outage failures (``RetryableSendError`` or an unexpected error; neither a permanent refusal
  nor a 429, which the account's rate limit handles). At ``DELIVERY_BREAKER_FAILURES`` failures
  that are at least half of the window's sends, it opens;
- **open** for ``DELIVERY_BREAKER_COOLDOWN_SECONDS``: every send to the platform is given back
  unsent (not an attempt) with the cooldown's remaining time as its wait;
- **half-open** after the cooldown: one send per cooldown goes through as a probe (the product's
  rate limiter admits it). Its success closes the breaker; its failure opens it again.

The inbox and campaigns see a paused platform as queued messages that go out by themselves.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from apps.core.shared import LimitCheck, shared_state

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
FAILURE_SHARE = 0.5


def _open_key(platform: str) -> str:
    return f"delivery:breaker:{platform}"


def _window(platform: str) -> str:
    return f"delivery:breaker:{platform}:{int(time.time() // WINDOW_SECONDS)}"


def breaker_wait(platform: str) -> tuple[float | None, bool]:
    """(None, False) when sends to ``platform`` may go out (closed); (None, True) when ONE send
    may go out as the half-open probe; (seconds, False) until the breaker lets a probe through."""
    record = shared_state().get_record_sync(_open_key(platform))
    if not record:
        return None, False
    remaining = record["until"] - time.time()
    if remaining > 0:
        return remaining, False
    cooldown = float(settings.DELIVERY_BREAKER_COOLDOWN_SECONDS)
    wait = shared_state().hit_limits_sync([LimitCheck(f"delivery:probe:{platform}", 1, cooldown, burst=1)])
    return wait, wait is None


def breaker_record(platform: str, *, sends: int, failures: int, probe: bool = False) -> None:
    """Count ``sends`` attempts of which ``failures`` were outages; open the breaker, or, for the
    half-open ``probe`` (``breaker_wait`` said so), close or reopen it."""
    if sends <= 0:
        return
    state = shared_state()
    if probe:
        if failures:
            _open(platform, reason="the probe failed")
        else:
            state.delete_sync(_open_key(platform))
            logger.warning("delivery breaker for %s closed: a probe went through", platform)
        return
    window = _window(platform)
    total = state.incr_sync(f"{window}:sends", ttl=WINDOW_SECONDS * 2, amount=sends)
    if not failures:
        return
    failed = state.incr_sync(f"{window}:failures", ttl=WINDOW_SECONDS * 2, amount=failures)
    if failed >= settings.DELIVERY_BREAKER_FAILURES and failed >= FAILURE_SHARE * total:
        _open(platform, reason=f"{failed} of {total} sends failed this minute")


def _open(platform: str, *, reason: str) -> None:
    cooldown = float(settings.DELIVERY_BREAKER_COOLDOWN_SECONDS)
    now = time.time()
    state = shared_state()
    state.set_record_sync(_open_key(platform), {"until": now + cooldown, "opened_at": now, "reason": reason})
    state.delete_sync(f"{_window(platform)}:sends", f"{_window(platform)}:failures")
    logger.warning("delivery breaker for %s opened for %.0f s: %s", platform, cooldown, reason)


def breaker_status(platform: str) -> dict:
    """{"state": closed | open | half_open, "until", "reason"} for pages and the admin."""
    record = shared_state().get_record_sync(_open_key(platform))
    if not record:
        return {"state": "closed"}
    state = "open" if record["until"] > time.time() else "half_open"
    return {"state": state, "until": record["until"], "reason": record.get("reason", "")}
