"""The platform connector interface, and OnlyFans/Fansly through a third-party API provider.

``PlatformConnector`` extends delivery's ``Connector`` (send one message, send a mass message)
with what the rest of the product needs from a platform: the account's status, fans, messages and
transactions as cursor-paged feeds (for sync), and publishing a post and reading its status.
Every error is one of delivery's: ``PermanentSendError`` (trying again will not help: a bad key, a
fan who blocked the creator, a text refused), ``RetryableSendError`` (an outage, a timeout) or
``RateLimitedSendError`` (a 429, with the provider's ``Retry-After`` in ``retry_after``). So the
campaign pipeline's rate limiter, breaker and retries (apps/delivery/services.py) treat a real
connector's failures exactly as the simulated one's.

``ThirdPartyApiConnector`` serves ``onlyfans`` and ``fansly`` (registered by
``DELIVERY_CONNECTORS`` in settings). Delivery builds one per platform and process, so it holds no
account: each send looks up the creator's connection. A creator with a live (connected, not
simulated, with an API key) connection is sent through the provider; a creator without one keeps
the SIMULATED connector (apps/delivery/simulated.py: the demo, ids ``sim_…``); a creator whose
real connection needs a reconnect or is broken gets a permanent error (a dead letter to re-queue
after reconnecting), never a silent simulated "send".

The wire format (tests/fakes/platforms.py ``FakeCreatorApi`` speaks it; docs/integrations.md
"Connector"): ``<base URL>/accounts/<account id>/<resource>``, ``Authorization: Bearer <key>``,
JSON, cursor pages ``{"data": [...], "pagination": {"next_cursor", "has_more"}}``, writes carry
``Idempotency-Key: <agency id>:<delivery key>`` so a re-send answers the first message.

Where the provider lives is checked before any connection is opened (``api_url_check``): https
only (plain http to 127.0.0.1 only where ``INTEGRATIONS_API_ALLOW_LOOPBACK`` is on, the default
with DEBUG), no private, link-local or metadata addresses (the rule of apps/ai/egress.py), and with
``INTEGRATIONS_API_LOOPBACK_ONLY`` (the tests) nothing but loopback. Redirects are not followed.
Written on ``requests`` (what integrations already uses for outbound HTTP), one pooled session per
thread. Not here: webhooks (webhooks.py) and the sync job that pages the feeds (sync.py).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.ai.egress import address_refusal, guarded_session
from apps.delivery.connectors import (
    Connector,
    MassSendResult,
    PermanentSendError,
    RateLimitedSendError,
    RetryableSendError,
    SendError,
    SendResult,
)
from apps.delivery.simulated import SimulatedConnector
from apps.integrations.models import Connection, ConnectionStatus

if TYPE_CHECKING:
    from apps.delivery.models import Delivery

PAGE_SIZE = 500  # items asked per page of a feed (the provider allows up to 1000)
MAX_RETRY_AFTER = 3600.0


class RefusedApiURL(PermanentSendError):
    """The API base URL is not one Huntaze connects to (see ``api_url_check``)."""

    code = "integration_url_refused"


@dataclass(frozen=True)
class Page:
    """One page of a feed: the items, the cursor to ask from next time, and whether more wait now."""

    items: list[dict]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    username: str
    ok: bool


@dataclass(frozen=True)
class PostResult:
    post_id: str
    status: str  # the platform's word: published, scheduled, processing, failed
    url: str = ""


# --- Where the provider may be ----------------------------------------------------------------------


def api_url_check(url: str, *, resolve: bool = True) -> None:
    """Raise ``RefusedApiURL`` (a message safe to show) unless ``url`` may receive the API key.
    ``resolve=False`` (the form, and each request) checks the scheme and IP literals only; each
    connection resolves the host name once, checks every address and connects to what it checked
    (``_session``), so a DNS answer changed after a check (rebinding) reaches nothing."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise RefusedApiURL("Enter a valid URL.") from None
    if parts.username or parts.password:
        raise RefusedApiURL("Remove the user name or password from the URL; the API key has its own field.")
    if not host:
        raise RefusedApiURL("The URL needs a host name.")
    allow_loopback = bool(settings.INTEGRATIONS_API_ALLOW_LOOPBACK)
    literal = _literal(host)
    loopback_http = parts.scheme == "http" and allow_loopback and literal is not None and literal.is_loopback
    if parts.scheme != "https" and not loopback_http:
        raise RefusedApiURL("Use an https:// address: the API key travels with every request.")
    if literal is not None:
        _check_address(literal, allow_loopback)
        return
    if settings.INTEGRATIONS_API_LOOPBACK_ONLY:  # not even a DNS query leaves a test run
        raise RefusedApiURL("Only loopback addresses (127.0.0.1) are reached in this environment.")
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # DNS may be down for a moment: try again later
        raise RetryableSendError("The API provider's host name could not be resolved.") from None
    for info in infos:
        _check_address(ipaddress.ip_address(info[4][0]), allow_loopback)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _check_address(address, allow_loopback: bool) -> None:
    if address.is_loopback:
        if not allow_loopback:
            raise RefusedApiURL("This URL points to this server itself, which is not an API provider.")
        return
    reason = address_refusal(address, allow_private=False)
    if reason:
        raise RefusedApiURL(reason)
    if settings.INTEGRATIONS_API_LOOPBACK_ONLY:
        raise RefusedApiURL("Only loopback addresses (127.0.0.1) are reached in this environment.")


# --- The interface ----------------------------------------------------------------------------------


class PlatformConnector(Connector):
    """A platform's connector: delivery's sends plus reads, publishing and the account's status.
    A method the platform does not have raises ``PermanentSendError`` saying so."""

    def _unsupported(self, what: str) -> PermanentSendError:
        return PermanentSendError(f"{self.platform} does not support {what} through Huntaze.")

    def account_status(self, connection: Connection) -> AccountStatus:
        raise self._unsupported("reading the account")

    def fetch_fans(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        raise self._unsupported("reading fans")

    def fetch_messages(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        raise self._unsupported("reading messages")

    def fetch_transactions(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        raise self._unsupported("reading transactions")

    def publish_post(
        self, connection: Connection, *, text: str, media_urls: Sequence[str] = (), idempotency_key: str = ""
    ) -> PostResult:
        raise self._unsupported("publishing posts")

    def post_status(self, connection: Connection, *, post_id: str) -> PostResult:
        raise self._unsupported("reading a post's status")


# --- The third-party API ----------------------------------------------------------------------------

_local = threading.local()


def _connection_check(address) -> None:
    _check_address(address, bool(settings.INTEGRATIONS_API_ALLOW_LOOPBACK))


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        # Resolves each new connection's host once and connects only to the address it checked
        # (apps/ai/egress.py); no proxy from the environment.
        session = guarded_session(_connection_check)
        _local.session = session
    return session


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return min(max((when - timezone.now()).total_seconds(), 0.0), MAX_RETRY_AFTER)


def _provider_error(response: requests.Response) -> tuple[str, str]:
    """The provider's error (code, message) from ``{"error": {"code", "message"}}``; untrusted text."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return "", ""
    if isinstance(error, dict):
        return str(error.get("code") or "")[:64], str(error.get("message") or "")[:300]
    return "", str(error or "")[:300]


def _provider_message(response: requests.Response) -> str:
    return _provider_error(response)[1]


def _when(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class ThirdPartyApiConnector(PlatformConnector):
    """OnlyFans or Fansly through the agency's third-party API provider (simulated without one)."""

    supports_mass = True

    def __init__(self, *, platform: str):
        super().__init__(platform=platform)
        self.simulated = SimulatedConnector(platform=platform)

    # -- which account a delivery goes to

    def live_connection(self, *, creator_id: int) -> Connection | None:
        """The creator's real connection for this platform, or None (the simulated connector then
        serves). ``PermanentSendError`` when the real one cannot be used until someone reconnects."""
        connection = (
            Connection.objects.filter(creator_id=creator_id, platform=self.platform, is_simulated=False)
            .exclude(status=ConnectionStatus.DISCONNECTED)
            .only("pk", "agency_id", "creator_id", "platform", "status", "api_base_url", "api_key", "api_account_id")
            .first()
        )
        if connection is None or not connection.api_key:
            return None
        if connection.status != ConnectionStatus.CONNECTED:
            raise PermanentSendError(
                f"The creator's {connection.get_platform_display()} connection is "
                f"{connection.get_status_display().lower()}: reconnect it, then re-queue this message."
            )
        return connection

    # -- HTTP

    def request(
        self,
        connection: Connection,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        idempotency_key: str = "",
    ) -> dict:
        """One call to the provider; answers the JSON object or raises a ``SendError`` by status."""
        if not connection.api_base_url or not connection.api_account_id:
            raise PermanentSendError("The connection has no API base URL or account id: save the account again.")
        url = f"{connection.api_base_url.rstrip('/')}/accounts/{quote(connection.api_account_id, safe='')}/{path}"
        api_url_check(url, resolve=False)  # the connection checks the addresses it connects to
        headers = {"Authorization": f"Bearer {connection.api_key}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = _session().request(
                method, url, params=params, json=body, headers=headers, allow_redirects=False,
                timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS,
            )  # fmt: skip
        except requests.Timeout:
            raise RetryableSendError("The API provider did not answer in time.") from None
        except requests.RequestException as error:
            raise RetryableSendError(f"The API provider could not be reached ({type(error).__name__}).") from None
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            raise RateLimitedSendError(
                "The API provider's per-minute limit is reached"
                + (f": retry after {wait:g} s." if wait is not None else "."),
                retry_after=wait, extra={"status": status},
            )  # fmt: skip
        if status >= 500 or status == 408:
            raise RetryableSendError(
                f"The API provider failed (HTTP {status}). {_provider_message(response)}".strip(),
                retry_after=_retry_after(response), extra={"status": status},
            )  # fmt: skip
        if status >= 300:
            code, detail = _provider_error(response)
            auth = status == 401 or (status == 403 and code == "forbidden")  # the key, not this one message
            raise PermanentSendError(
                f"The API provider refused the request (HTTP {status}): {detail or response.reason or ''}"[:500],
                extra={"status": status, "code": code, "auth": auth},
            )
        try:
            payload = response.json()
        except (ValueError, json.JSONDecodeError):
            raise RetryableSendError("The API provider answered something that is not JSON.") from None
        if not isinstance(payload, dict):
            raise RetryableSendError("The API provider answered an unexpected shape.")
        return payload

    def _page(self, connection: Connection, resource: str, cursor: str, limit: int) -> Page:
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        payload = self.request(connection, "GET", resource, params=params)
        items, pagination = payload.get("data"), payload.get("pagination") or {}
        if not isinstance(items, list) or not isinstance(pagination, dict):
            raise RetryableSendError(f"The API provider's {resource} page has an unexpected shape.")
        next_cursor = str(pagination.get("next_cursor") or cursor or "")
        return Page(items=[i for i in items if isinstance(i, dict)], next_cursor=next_cursor,
                    has_more=bool(pagination.get("has_more")))  # fmt: skip

    # -- reads

    def account_status(self, connection: Connection) -> AccountStatus:
        data = self.request(connection, "GET", "me").get("data") or {}
        return AccountStatus(account_id=str(data.get("id", "")), username=str(data.get("username", "")),
                             ok=bool(data.get("is_authenticated", True)))  # fmt: skip

    def statistics(self, connection: Connection) -> dict:
        return self.request(connection, "GET", "statistics").get("data") or {}

    def fetch_fans(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        return self._page(connection, "fans", cursor, limit)

    def fetch_chats(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        return self._page(connection, "chats", cursor, limit)

    def fetch_messages(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        return self._page(connection, "messages", cursor, limit)

    def fetch_transactions(self, connection: Connection, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
        return self._page(connection, "transactions", cursor, limit)

    # -- posts

    def publish_post(
        self, connection: Connection, *, text: str, media_urls: Sequence[str] = (), idempotency_key: str = ""
    ) -> PostResult:
        body = {"text": text, "media_urls": list(media_urls), "scheduled_at": None}
        data = self.request(connection, "POST", "posts", body=body, idempotency_key=idempotency_key).get("data") or {}
        return PostResult(
            post_id=str(data.get("id", "")), status=str(data.get("status", "")), url=str(data.get("url", ""))
        )

    def post_status(self, connection: Connection, *, post_id: str) -> PostResult:
        data = self.request(connection, "GET", f"posts/{quote(post_id, safe='')}").get("data") or {}
        return PostResult(
            post_id=str(data.get("id", "")), status=str(data.get("status", "")), url=str(data.get("url", ""))
        )

    # -- sends (delivery's interface)

    @staticmethod
    def _message_body(delivery: Delivery) -> dict:
        price = delivery.ppv_price
        return {
            "text": delivery.text,
            "price": str(Decimal(price)) if price is not None else None,
            "media_count": delivery.media_count,
        }

    @staticmethod
    def _key(delivery: Delivery) -> str:
        return f"{delivery.agency_id}:{delivery.idempotency_key}"

    def _send_with(self, connection: Connection, delivery: Delivery) -> SendResult:
        if len(delivery.text) > self.max_text_length:
            raise PermanentSendError(f"The message is longer than {self.max_text_length} characters.")
        fan = quote(delivery.recipient_id, safe="")
        data = self.request(
            connection, "POST", f"chats/{fan}/messages", body=self._message_body(delivery),
            idempotency_key=self._key(delivery),
        ).get("data") or {}  # fmt: skip
        if not data.get("id"):
            raise RetryableSendError("The API provider accepted the message without an id.")
        return SendResult(platform_message_id=str(data["id"])[:128], sent_at=_when(data.get("created_at")))

    def send(self, delivery: Delivery) -> SendResult:
        connection = self.live_connection(creator_id=delivery.creator_id)
        if connection is None:
            return self.simulated.send(delivery)
        return self._send_with(connection, delivery)

    def send_many(self, deliveries: list[Delivery]) -> list[SendResult | Exception]:
        """The pump's batch (one account): the connection is looked up once; the provider has no
        batch endpoint, so one request each (a 429 stops the rest of the batch: they would get
        the same answer, and the account's pace slows down)."""
        if not deliveries:
            return []
        try:
            connection = self.live_connection(creator_id=deliveries[0].creator_id)
        except SendError as error:
            return [error] * len(deliveries)
        if connection is None:
            return self.simulated.send_many(deliveries)
        outcomes: list[SendResult | Exception] = []
        for index, delivery in enumerate(deliveries):
            try:
                outcomes.append(self._send_with(connection, delivery))
            except RateLimitedSendError as error:
                outcomes.extend([error] * (len(deliveries) - index))
                break
            except SendError as error:
                outcomes.append(error)
        return outcomes

    def send_mass(self, delivery: Delivery, recipient_ids: Sequence[str]) -> MassSendResult:
        connection = self.live_connection(creator_id=delivery.creator_id)
        if connection is None:
            return self.simulated.send_mass(delivery, recipient_ids)
        if len(delivery.text) > self.max_text_length:
            raise PermanentSendError(f"The message is longer than {self.max_text_length} characters.")
        body = {**self._message_body(delivery), "fan_ids": list(recipient_ids)}
        data = self.request(
            connection, "POST", "mass-messages", body=body, idempotency_key=self._key(delivery)
        ).get("data") or {}  # fmt: skip
        if not data.get("id"):
            raise RetryableSendError("The API provider accepted the mass message without an id.")
        rejected = tuple(str(fan) for fan in data.get("rejected_fan_ids") or ())
        return MassSendResult(
            platform_message_id=str(data["id"])[:128], sent_at=_when(data.get("created_at")), rejected=rejected
        )
