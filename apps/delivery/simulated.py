"""The SIMULATED connector: the demo's and the tests' stand-in for OnlyFans, Fansly and the rest.

It sends nothing anywhere. It stores what a platform would have received in
``SimulatedOutboundMessage`` and answers a made-up platform message id (``sim_…``). Like a real
idempotent send endpoint, a second send with the same agency and idempotency key answers the
first message's id and stores nothing new, so a delivery re-sent after a worker was killed is
still one message on the "platform".

Faults are chosen by the data, never by patching code: a recipient id (the fan's platform id)
starting with

- ``fail-permanent`` → ``PermanentSendError`` (the fan blocked the creator), on every attempt;
- ``fail-retry-<n>`` → ``RetryableSendError`` on the first ``n`` attempts, then sent;
- ``fail-retry`` (no number) → ``RetryableSendError`` on every attempt;
- ``fail-ratelimit-<s>`` → ``RateLimitedSendError(retry_after=s)`` (a 429) on the first attempt,
  then sent;
- ``slow-<s>`` → stores the message, then waits ``s`` seconds before answering (a platform that
  accepted the message while the worker is about to be killed);
- ``lost-answer-<n>`` → stores the message, then raises ``RetryableSendError`` (its answer was
  lost: a timeout) on the first ``n`` attempts; the retry answers the stored message's id.

It enforces the platform's text limit as a platform would (``PermanentSendError``).

It has a mass message too (``send_mass``), stored as one ``SimulatedMassMessage`` per agency and
key whatever the number of fans. The same prefixes, on any one of its fans, act on the whole
call (``fail-retry…``, ``fail-ratelimit-…``, ``slow-…``, ``lost-answer-…``), except
``fail-permanent``: the platform takes the mass message and answers that fan as rejected.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence

from django.utils import timezone

from apps.delivery.connectors import (
    Connector,
    MassSendResult,
    PermanentSendError,
    RateLimitedSendError,
    RetryableSendError,
    SendError,
    SendResult,
)
from apps.delivery.models import Delivery, SimulatedMassMessage, SimulatedOutboundMessage

_RETRY_N = re.compile(r"fail-retry-(\d+)")
_RATE_LIMIT = re.compile(r"fail-ratelimit-(\d+(?:\.\d+)?)")
_SLOW = re.compile(r"slow-(\d+(?:\.\d+)?)")
_LOST_ANSWER = re.compile(r"lost-answer-(\d+)")
_FAULTS = ("fail-", "slow-", "lost-answer-")


class SimulatedConnector(Connector):
    """Stores outbound messages in the database instead of sending them (simulated)."""

    supports_mass = True

    def send(self, delivery: Delivery) -> SendResult:
        self._refuse(delivery)
        message_id, received_at = self._store_many([delivery])[(delivery.agency_id, delivery.idempotency_key)]
        self._fault_after_store(delivery, delivery.recipient_id)
        return SendResult(platform_message_id=message_id, sent_at=received_at)

    def send_mass(self, delivery: Delivery, recipient_ids: Sequence[str]) -> MassSendResult:
        """One stored mass message per key, whatever the number of fans (a re-send answers the
        first one); fans whose id starts with ``fail-permanent`` are answered as rejected."""
        faulty = [recipient for recipient in recipient_ids if recipient.startswith(_FAULTS)]
        for recipient in faulty:
            self._fault_before_send(delivery, recipient=recipient, permanent=False)
        self._refuse_text(delivery)
        rejected = [recipient for recipient in faulty if recipient.startswith("fail-permanent")]
        SimulatedMassMessage.objects.bulk_create(
            [
                SimulatedMassMessage(
                    agency_id=delivery.agency_id,
                    creator_id=delivery.creator_id,
                    platform=delivery.platform,
                    recipient_ids=list(recipient_ids),
                    rejected_ids=rejected,
                    text=delivery.text,
                    ppv_price=delivery.ppv_price,
                    media_count=delivery.media_count,
                    idempotency_key=delivery.idempotency_key,
                    platform_message_id=f"sim_mass_{uuid.uuid4().hex[:24]}",
                    received_at=timezone.now(),
                )
            ],
            ignore_conflicts=True,  # a key stored before (a re-send) keeps its first mass message
        )
        message_id, received_at, stored_rejected = (
            SimulatedMassMessage.objects.filter(agency_id=delivery.agency_id, idempotency_key=delivery.idempotency_key)
            .values_list("platform_message_id", "received_at", "rejected_ids")
            .get()
        )
        for recipient in faulty:
            self._fault_after_store(delivery, recipient)
        return MassSendResult(platform_message_id=message_id, sent_at=received_at, rejected=tuple(stored_rejected))

    def send_many(self, deliveries: list[Delivery]) -> list[SendResult | Exception]:
        """The batch endpoint: slow fans one by one, the rest stored with one insert and one read
        (a key stored before answers its first message, as ``send`` does)."""
        outcomes: dict[int, SendResult | Exception] = {}
        plain: list[Delivery] = []
        for delivery in deliveries:
            if _SLOW.match(delivery.recipient_id) or _LOST_ANSWER.match(delivery.recipient_id):
                outcomes[delivery.pk] = super().send_many([delivery])[0]
                continue
            try:
                self._refuse(delivery)
            except SendError as error:
                outcomes[delivery.pk] = error
                continue
            plain.append(delivery)
        if plain:
            stored = self._store_many(plain)
            for delivery in plain:
                message_id, received_at = stored[(delivery.agency_id, delivery.idempotency_key)]
                outcomes[delivery.pk] = SendResult(platform_message_id=message_id, sent_at=received_at)
        return [outcomes[delivery.pk] for delivery in deliveries]

    def _refuse(self, delivery: Delivery) -> None:
        """Raise what the simulated platform answers this delivery instead of taking it, if anything."""
        self._fault_before_send(delivery, recipient=delivery.recipient_id)
        self._refuse_text(delivery)

    def _refuse_text(self, delivery: Delivery) -> None:
        if len(delivery.text) > self.max_text_length:
            raise PermanentSendError(
                f"The simulated {self.platform} refused a {len(delivery.text)}-character message "
                f"(limit {self.max_text_length})."
            )

    @staticmethod
    def _store_many(deliveries: list[Delivery]) -> dict[tuple[int, str], tuple[str, object]]:
        """(agency, key) → (platform message id, received at) of each delivery's stored message:
        one insert that skips keys already stored (another worker's send of the same key at the
        same moment included), then one read per agency."""
        now = timezone.now()
        SimulatedOutboundMessage.objects.bulk_create(
            [
                SimulatedOutboundMessage(
                    agency_id=delivery.agency_id,
                    creator_id=delivery.creator_id,
                    platform=delivery.platform,
                    recipient_id=delivery.recipient_id,
                    text=delivery.text,
                    ppv_price=delivery.ppv_price,
                    media_count=delivery.media_count,
                    idempotency_key=delivery.idempotency_key,
                    platform_message_id=f"sim_{uuid.uuid4().hex[:24]}",
                    received_at=now,
                )
                for delivery in deliveries
            ],
            ignore_conflicts=True,  # a key stored before (a re-send) keeps its first message
        )
        stored: dict[tuple[int, str], tuple[str, object]] = {}
        for agency_id in {delivery.agency_id for delivery in deliveries}:
            keys = [delivery.idempotency_key for delivery in deliveries if delivery.agency_id == agency_id]
            rows = SimulatedOutboundMessage.objects.filter(agency_id=agency_id, idempotency_key__in=keys).values_list(
                "idempotency_key", "platform_message_id", "received_at"
            )
            for key, message_id, received_at in rows:
                stored[(agency_id, key)] = (message_id, received_at)
        return stored

    @staticmethod
    def _fault_after_store(delivery: Delivery, recipient: str) -> None:
        """What happens between storing the message and answering: a slow answer, a lost one."""
        slow = _SLOW.match(recipient)
        if slow:
            time.sleep(float(slow.group(1)))
        lost = _LOST_ANSWER.match(recipient)
        if lost and delivery.attempts <= int(lost.group(1)):
            raise RetryableSendError(
                f"The simulated platform took the message but its answer was lost (attempt {delivery.attempts})."
            )

    def _fault_before_send(self, delivery: Delivery, *, recipient: str, permanent: bool = True) -> None:
        """The faults a fan id chooses, raised before anything is stored (``permanent``: a
        ``fail-permanent`` fan refuses the whole send, as a direct message to them does)."""
        attempt = delivery.attempts
        if permanent and recipient.startswith("fail-permanent"):
            raise PermanentSendError("The simulated platform refused the message: the fan has blocked this creator.")
        match = _RETRY_N.match(recipient)
        if match and attempt <= int(match.group(1)):
            raise RetryableSendError(f"The simulated platform is unavailable (attempt {attempt}).")
        if recipient.startswith("fail-retry") and not match:
            raise RetryableSendError(f"The simulated platform is unavailable (attempt {attempt}).")
        match = _RATE_LIMIT.match(recipient)
        if match and attempt <= 1:
            seconds = float(match.group(1))
            raise RateLimitedSendError(
                f"The simulated platform is rate limiting: retry after {seconds:g} s.", retry_after=seconds
            )
