"""Throttles for the anonymous account actions that send email or create accounts: sign-up,
password reset and resending the verification link. Login guessing is handled by django-axes.

Counters live in the one shared limiter (apps.core.shared), so every web process agrees; each
action counts per client address and per email address: the hourly number at once, then one
more each 1/N hour. A refused attempt raises ``ThrottledError`` (429), which pages show as a form
error.
"""

from __future__ import annotations

import hashlib

from django.http import HttpRequest

from apps.core.errors import ApplicationError
from apps.core.shared import LimitCheck, shared_state

HOUR = 3600
# action → (attempts per address per hour, attempts per email per hour)
LIMITS: dict[str, tuple[int, int]] = {
    "signup": (20, 5),
    "password_reset": (20, 5),
    "verification_resend": (20, 5),
}


class ThrottledError(ApplicationError):
    status_code = 429
    code = "throttled"


def client_address(request: HttpRequest) -> str:
    """The peer address (daphne puts the proxy's X-Forwarded-For here when told to trust it)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def throttle_hit(*, action: str, address: str, email: str) -> None:
    """Count one attempt of ``action``, or refuse it when a window is full."""
    per_address, per_email = LIMITS[action]
    email_key = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]  # no addresses in keys
    checks = [
        LimitCheck(f"accounts:{action}:ip:{address}", per_address, HOUR),
        LimitCheck(f"accounts:{action}:email:{email_key}", per_email, HOUR),
    ]
    retry_after = shared_state().hit_limits_sync(checks)
    if retry_after is not None:
        minutes = max(1, round(retry_after / 60))
        raise ThrottledError(
            f"Too many attempts from here or for this address. Try again in about {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
            extra={"retry_after": round(retry_after)},
        )
