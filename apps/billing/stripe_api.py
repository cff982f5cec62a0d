"""The one door to Stripe: a StripeClient of the official ``stripe`` SDK built from settings, and
the few calls billing makes through it, each answering plain dicts and turning the SDK's errors
into BillingProviderError (a friendly message, whether retrying may help, nothing secret).

Online billing is on when ``STRIPE_SECRET_KEY`` is set (``stripe_enabled``); ``STRIPE_API_BASE``
points the SDK at another address (the tests' loopback fake, tests/fakes/stripe_server.py).
What the calls mean for an agency lives in apps/billing/stripe_sync.py; this module knows no model.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings

from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_NETWORK_RETRIES = 2  # the SDK retries connection errors, 409s and 5xx with its own idempotency key


class BillingNotConfigured(ApplicationError):
    status_code = 409
    code = "billing_manual"

    def __init__(self) -> None:
        super().__init__(
            "Online payment is not set up on this Huntaze: billing is managed by the operator, who assigns "
            "your plan. Contact them to change it."
        )


class BillingProviderError(ApplicationError):
    """Stripe refused or could not be reached. ``retryable``: a network error, a rate limit or a 5xx."""

    status_code = 502
    code = "billing_provider"

    def __init__(self, message: str, *, retryable: bool, stripe_code: str = "", extra: dict | None = None) -> None:
        super().__init__(message, extra=extra)
        self.retryable = retryable
        self.stripe_code = stripe_code


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    if not stripe_enabled():
        raise BillingNotConfigured()
    base = settings.STRIPE_API_BASE or None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base, "meter_events": base} if base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _call(action: str, func, *args, **kwargs) -> dict[str, Any]:
    try:
        return _plain(func(*args, **kwargs))
    except stripe.StripeError as error:
        status = getattr(error, "http_status", None)
        code = getattr(error, "code", None) or ""
        retryable = isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (status or 0) >= 500
        # The SDK's message never holds the key; the request's parameters are not logged at all.
        logger.warning(
            "stripe %s failed: %s status=%s code=%s request_id=%s",
            action, type(error).__name__, status, code, getattr(error, "request_id", None),
        )  # fmt: skip
        if isinstance(error, stripe.AuthenticationError):
            message = "Stripe refused this site's API key. The operator must check STRIPE_SECRET_KEY."
        elif retryable:
            message = "Stripe could not be reached just now. Please try again in a minute."
        else:
            message = f"Stripe refused the request: {getattr(error, 'user_message', None) or error.__class__.__name__}."
        raise BillingProviderError(message, retryable=retryable, stripe_code=code) from error


def customer_create(*, email: str, name: str, agency_ref: str) -> dict[str, Any]:
    """One customer per agency whatever the retries: the idempotency key is the agency's."""
    return _call(
        "customer create",
        client().v1.customers.create,
        params={"email": email, "name": name, "metadata": {"agency": agency_ref}},
        options={"idempotency_key": f"huntaze-customer-{agency_ref}"},
    )


def checkout_session_create(
    *, customer: str, price: str, agency_ref: str, success_url: str, cancel_url: str
) -> dict[str, Any]:
    return _call(
        "checkout session create",
        client().v1.checkout.sessions.create,
        params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": agency_ref,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"agency": agency_ref},
            "subscription_data": {"metadata": {"agency": agency_ref}},
        },
    )


def checkout_session_list_open(customer: str) -> list[dict[str, Any]]:
    """The customer's Checkout Sessions that can still be paid, newest first."""
    found = _call(
        "checkout session list",
        client().v1.checkout.sessions.list,
        params={"customer": customer, "status": "open", "limit": 100},
    )
    return list(found.get("data") or [])


def checkout_session_retrieve(session_id: str) -> dict[str, Any]:
    return _call("checkout session retrieve", client().v1.checkout.sessions.retrieve, session_id)


def checkout_session_expire(session_id: str) -> dict[str, Any]:
    """Expire an open session: its page then says so and takes no payment. Stripe refuses (a
    BillingProviderError, not retryable) for a session that is not open (paid, or expired)."""
    return _call("checkout session expire", client().v1.checkout.sessions.expire, session_id)


def portal_session_create(*, customer: str, return_url: str) -> dict[str, Any]:
    return _call(
        "portal session create",
        client().v1.billing_portal.sessions.create,
        params={"customer": customer, "return_url": return_url},
    )


def subscription_list(customer: str) -> list[dict[str, Any]]:
    """The customer's subscriptions that are not canceled (Stripe's default), newest first."""
    found = _call("subscription list", client().v1.subscriptions.list, params={"customer": customer, "limit": 10})
    return list(found.get("data") or [])


def subscription_retrieve(subscription_id: str) -> dict[str, Any]:
    return _call("subscription retrieve", client().v1.subscriptions.retrieve, subscription_id)


# The comment Stripe keeps on a subscription cancelled because its agency closed: the
# ``customer.subscription.deleted`` that follows is about an agency that no longer exists, as expected.
CLOSED_AGENCY_COMMENT = "Agency closed in Huntaze (its last member deleted their account)."
# … and on a second subscription paid through a second Checkout page (refunded).
DUPLICATE_COMMENT = "A second subscription of the same agency (paid twice through Checkout): refunded."


def subscription_cancel(subscription_id: str, *, comment: str) -> dict[str, Any]:
    """Cancel at once (no final invoice, no proration: Stripe's defaults): the customer is not
    charged again. A DELETE, idempotent by nature (Stripe takes no idempotency key on it);
    ``comment`` stays on it in Stripe (``cancellation_details``)."""
    return _call(
        "subscription cancel",
        client().v1.subscriptions.cancel,
        subscription_id,
        params={"cancellation_details": {"comment": comment}},
    )


def invoice_payment_list(invoice_id: str) -> list[dict[str, Any]]:
    """What paid an invoice: its invoice payments (``payment.payment_intent``, ``status``)."""
    found = _call("invoice payment list", client().v1.invoice_payments.list, params={"invoice": invoice_id})
    return list(found.get("data") or [])


def refund_create(*, payment_intent: str, key: str, metadata: dict[str, str]) -> dict[str, Any]:
    """Refund what ``payment_intent`` took, in full; ``key`` makes it one refund whatever the retries."""
    return _call(
        "refund create",
        client().v1.refunds.create,
        params={"payment_intent": payment_intent, "reason": "duplicate", "metadata": metadata},
        options={"idempotency_key": key},
    )


def subscription_price_change(*, subscription_id: str, item_id: str, price: str, key: str) -> dict[str, Any]:
    """Move the subscription's item to ``price``, prorated (Stripe credits the unused time and
    charges the new price's rest of the period on the next invoice)."""
    return _call(
        "subscription update",
        client().v1.subscriptions.update,
        subscription_id,
        params={"items": [{"id": item_id, "price": price}], "proration_behavior": "create_prorations"},
        options={"idempotency_key": key},
    )


def invoice_list(*, customer: str, limit: int = 24) -> list[dict[str, Any]]:
    answer = _call("invoice list", client().v1.invoices.list, params={"customer": customer, "limit": limit})
    return list(answer.get("data") or [])


def meter_event_create(*, customer: str, value: int, identifier: str, timestamp: int) -> dict[str, Any]:
    """One usage report to the meter named STRIPE_METER_EVENT_NAME; ``identifier`` makes it count once."""
    return _call(
        "meter event create",
        client().v1.billing.meter_events.create,
        params={
            "event_name": settings.STRIPE_METER_EVENT_NAME,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "identifier": identifier,
            "timestamp": timestamp,
        },
        options={"idempotency_key": identifier},
    )
