"""The connector registry (DELIVERY_CONNECTORS), a connector's own errors, and receivers of
delivery_status_changed that fail."""

from __future__ import annotations

from django.utils import timezone

from apps.delivery.connectors import Connector, SendError, SendResult, connector_for, connector_paths, text_limit
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.signals import delivery_status_changed
from apps.delivery.simulated import SimulatedConnector
from apps.delivery.tasks import deliver
from tests.delivery.conftest import enqueue


class ShortConnector(Connector):
    """A stand-in for a real integration's connector: a shorter limit, its own error classes."""

    sent: list[int] = []

    def __init__(self, *, platform: str):
        super().__init__(platform=platform)
        self.max_text_length = 20

    def send(self, delivery: Delivery) -> SendResult:
        if delivery.recipient_id == "gone":
            raise UnsubscribedError("The fan unsubscribed.")
        if delivery.recipient_id == "crash":
            raise RuntimeError("bug in the connector")
        ShortConnector.sent.append(delivery.pk)
        return SendResult(platform_message_id=f"short-{delivery.pk}", sent_at=timezone.now())


class UnsubscribedError(SendError):
    retryable = False


def test_every_platform_defaults_to_the_simulated_connector(settings):
    settings.DELIVERY_CONNECTORS = {}
    assert set(connector_paths().values()) == {"apps.delivery.simulated.SimulatedConnector"}
    assert isinstance(connector_for("fansly"), SimulatedConnector)


def test_a_connector_registered_by_setting_serves_its_platform(world, settings):
    settings.DELIVERY_CONNECTORS = {"onlyfans": f"{__name__}.ShortConnector"}
    assert text_limit("onlyfans") == 20 and text_limit("fansly") == 1500
    delivery = enqueue(world, text="Short and sweet")
    assert deliver(delivery.pk) == "sent"
    assert Delivery.objects.get(pk=delivery.pk).platform_message_id == f"short-{delivery.pk}"
    assert not SimulatedOutboundMessage.objects.exists()

    gone = enqueue(world, recipient_id="gone", text="Hi")
    assert deliver(gone.pk) == "dead"  # its own SendError subclass, retryable = False

    crash = enqueue(world, recipient_id="crash", text="Hi")
    assert deliver(crash.pk) == "failed"  # an unexpected error is retried: sends are idempotent
    assert "RuntimeError: bug in the connector" in Delivery.objects.get(pk=crash.pk).last_error

    settings.DELIVERY_CONNECTORS = {}
    assert text_limit("onlyfans") == 1000  # the registry follows the setting


def test_the_send_errors_say_whether_they_are_retryable():
    from apps.core.errors import ApplicationError
    from apps.delivery.connectors import PermanentSendError, RetryableSendError

    assert issubclass(PermanentSendError, ApplicationError) and not PermanentSendError.retryable
    assert issubclass(RetryableSendError, ApplicationError) and RetryableSendError.retryable
    assert RetryableSendError("slow down", retry_after=3).retry_after == 3


def test_a_failing_receiver_does_not_stop_the_send_or_the_others(world, after_commit):
    seen = []

    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    def working(sender, *, status, **kwargs):
        seen.append(status)

    delivery_status_changed.connect(broken, dispatch_uid="tests.broken")
    delivery_status_changed.connect(working, dispatch_uid="tests.working")
    try:
        delivery = enqueue(world)
        with after_commit():
            assert deliver(delivery.pk) == "sent"
    finally:
        delivery_status_changed.disconnect(dispatch_uid="tests.broken")
        delivery_status_changed.disconnect(dispatch_uid="tests.working")
    assert seen == ["sending", "sent"]
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"
