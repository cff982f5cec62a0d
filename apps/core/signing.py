"""HMAC-SHA256 webhook signatures: the one scheme every signed webhook of Huntaze uses.

The signed message is ``<unix timestamp> "." <raw body>``; the signature is its hex
HMAC-SHA256 under a shared secret. Outbound webhooks (alert webhooks, CRM webhooks) carry it
Stripe-like in one header, ``t=<timestamp>,v1=<hex>``; the third-party OnlyFans/Fansly API sends
the timestamp and the hex in two headers, and its check uses ``sign`` directly. A receiver
refuses a timestamp too far from now (a replayed request) even when the signature is good.

Not here: where the secrets live (encrypted on their models) or which header names are used.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """``t=<timestamp>,v1=<signature>`` for ``body``, signed now unless ``timestamp`` is given."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_header(
    secret: str, header: str, body: bytes, *, tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """Whether ``header`` (``t=…,v1=…``; several ``v1`` allowed) signs ``body`` with ``secret``
    within ``tolerance`` seconds of now."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    raw = parts.get("t", [""])[0]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):  # 10**12 s is far past any real time
        return False
    timestamp = int(raw)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    # compare_digest raises on non-ASCII text: a header with such bytes simply does not match.
    return any(candidate.isascii() and hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


def verify(secret: str, timestamp: int | str, signature: str, body: bytes) -> bool:
    """Whether ``signature`` (hex, optionally prefixed ``sha256=``) signs ``timestamp.body``."""
    given = (signature or "").strip().removeprefix("sha256=")
    return given.isascii() and hmac.compare_digest(sign(secret, timestamp, body), given)
