"""A loopback Stripe for the billing tests: the part of Stripe's v1 wire protocol Huntaze uses,
served on 127.0.0.1 and a free port, driven through the official ``stripe`` SDK (a StripeClient
with ``base_addresses`` pointing here).

What it speaks, as Stripe does:

- requests: ``Authorization: Bearer sk_test_…`` (else 401 ``authentication_error``), form-encoded
  bodies with bracket notation (``line_items[0][price]=price_…``, ``metadata[k]=v``), list
  parameters in the query string; ``Idempotency-Key`` honoured (the same key answers the first
  response again, with ``Idempotent-Replayed: true``; the same key with other parameters is a 400
  ``idempotency_error``);
- answers: JSON objects with ``object``, an ``id`` with Stripe's prefix (``cus_``, ``cs_test_``,
  ``bps_``, ``sub_``, ``si_``, ``in_``, ``price_``, ``evt_``), ``livemode: false``, lists as
  ``{"object": "list", "data": [...], "has_more": false, "url": ...}``; errors as
  ``{"error": {"type", "code", "message", "param"}}`` with Stripe's status (400, 401, 402, 404);
- resources: customers (create, retrieve), prices (create, retrieve), checkout sessions
  (mode=subscription; create, retrieve, list by ``customer`` and ``status``, newest first, and
  ``POST /v1/checkout/sessions/{id}/expire``, which as Stripe's expires only an ``open`` session
  and answers it with ``status: "expired"``, a 400 for any other), billing portal sessions,
  subscriptions (retrieve, update with ``items[0][price]`` and ``proration_behavior``, cancel),
  subscription items (update), invoices (list by customer), invoice payments (``GET
  /v1/invoice_payments?invoice=``: the payment intent that paid it), refunds (``POST /v1/refunds``
  with ``payment_intent``, at most what was paid: a 400 ``charge_already_refunded`` past it),
  billing meter events (``/v1/billing/meter_events``; ``identifier`` dedupes as Stripe's does,
  with a 400 for a reused one).

Test helpers, outside the wire: ``complete_checkout`` (what a paying customer does on Stripe's
page: a subscription and an invoice paid by a payment intent; a session that is not open cannot be
paid, as Stripe's page says it expired), ``set_subscription`` (the dashboard or the clock moving
a subscription along), ``add_invoice``, ``fail_next`` (the next request answers an error),
``on_request`` (a callback run before each request is answered), and ``event`` / ``deliver``: a
webhook event built as Stripe builds them and posted to our endpoint with
a real ``Stripe-Signature`` header (``t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import LoopbackServer, QuietHandler

SECRET_KEY = "sk_test_fake_huntaze_0123456789"
WEBHOOK_SECRET = "whsec_fake_huntaze_0123456789"


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str = "", param: str = "") -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.code, self.param = status, type_, message, code, param

    def body(self) -> dict[str, Any]:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation back into nested dicts and lists (``a[0][b]=1`` → {"a": [{"b": "1"}]})."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(key.isdigit() for key in node):
            return [_lists(node[key]) for key in sorted(node, key=int)]
        return {key: _lists(value) for key, value in node.items()}
    return node


class FakeStripe(LoopbackServer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.customers: dict[str, dict] = {}
        self.prices: dict[str, dict] = {}
        self.checkout_sessions: dict[str, dict] = {}
        self.portal_sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.invoice_payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.meter_events: list[dict] = []
        self.item_updates: list[dict] = []  # every subscription item change, with its proration_behavior
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, params)
        self.idempotent: dict[str, tuple[str, int, dict]] = {}
        self.failures: list[StripeError] = []
        # Called as on_request(method, path) in the server's thread before each request is answered
        # (a test looks at the database while Huntaze waits for Stripe).
        self.on_request: Callable[[str, str], None] | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status, payload, headers = fake.handle(self.command, self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{next(fake.ids):06d}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        return Handler

    @property
    def url(self) -> str:
        return self.base_url

    def reset(self) -> None:
        with self.lock:
            for store in (self.customers, self.prices, self.checkout_sessions, self.portal_sessions,
                          self.subscriptions, self.invoices, self.invoice_payments, self.refunds,
                          self.idempotent):  # fmt: skip
                store.clear()
            self.meter_events.clear()
            self.item_updates.clear()
            self.requests.clear()
            self.failures.clear()
            self.on_request = None

    # --- the wire ----------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):08d}{int(time.time() * 1000) % 100000:05d}"

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: str) -> tuple[int, dict, dict]:
        split = urlsplit(raw_path)
        params = decode_form(parse_qsl(body if method == "POST" else split.query, keep_blank_values=True))
        auth = {key.lower(): value for key, value in headers.items()}.get("authorization", "")
        if not auth.startswith("Bearer sk_test_"):
            error = StripeError(401, "invalid_request_error", "Invalid API Key provided.", "api_key_invalid")
            return 401, error.body(), {}
        key = {name.lower(): value for name, value in headers.items()}.get("idempotency-key")
        if self.on_request is not None:
            self.on_request(method, split.path)
        with self.lock:
            self.requests.append((method, split.path, params))
            if key and method == "POST":
                seen = self.idempotent.get(key)
                fingerprint = json.dumps([split.path, params], sort_keys=True)
                if seen is not None:
                    if seen[0] != fingerprint:
                        error = StripeError(400, "idempotency_error", "Keys for idempotent requests can only be "
                                            "used with the same parameters they were first used with.")  # fmt: skip
                        return 400, error.body(), {}
                    return seen[1], seen[2], {"Idempotent-Replayed": "true"}
            try:
                if self.failures:
                    raise self.failures.pop(0)
                status, payload = 200, self.route(method, split.path, params)
            except StripeError as error:
                status, payload = error.status, error.body()
            if key and method == "POST" and status < 500:
                self.idempotent[key] = (json.dumps([split.path, params], sort_keys=True), status, payload)
            return status, payload, {}

    def route(self, method: str, path: str, params: dict) -> dict:
        parts = path.strip("/").split("/")
        if parts[0] != "v1":
            raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        resource, rest = (
            "/".join(parts[1:3]) if parts[1] in ("checkout", "billing_portal", "billing") else parts[1],
            (parts[3:] if parts[1] in ("checkout", "billing_portal", "billing") else parts[2:]),
        )
        handler = getattr(self, f"_{resource.replace('/', '_')}", None)
        if handler is None:
            raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        return handler(method, rest, params)

    def _missing(self, kind: str, object_id: str, param: str = "id") -> StripeError:
        return StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", param)

    def _required(self, params: dict, name: str) -> Any:
        if not params.get(name):
            raise StripeError(
                400, "invalid_request_error", f"Missing required param: {name}.", "parameter_missing", name
            )
        return params[name]

    def _customers(self, method: str, rest: list[str], params: dict) -> dict:
        if method == "POST" and not rest:
            customer = {"id": self.new_id("cus"), "object": "customer", "livemode": False, "created": int(time.time()),
                        "email": params.get("email"), "name": params.get("name"),
                        "metadata": params.get("metadata", {})}  # fmt: skip
            self.customers[customer["id"]] = customer
            return customer
        if rest and rest[0] in self.customers:
            return self.customers[rest[0]]
        raise self._missing("customer", rest[0] if rest else "")

    def _prices(self, method: str, rest: list[str], params: dict) -> dict:
        if method == "POST" and not rest:
            return self.add_price(int(params.get("unit_amount", 0)), params.get("currency", "usd"))
        if rest and rest[0] in self.prices:
            return self.prices[rest[0]]
        raise self._missing("price", rest[0] if rest else "", "price")

    def _checkout_sessions(self, method: str, rest: list[str], params: dict) -> dict:
        if method == "POST" and not rest:
            if params.get("mode") != "subscription":
                raise StripeError(400, "invalid_request_error", "Only mode=subscription is supported here.",
                                  "parameter_invalid_string", "mode")  # fmt: skip
            for name in ("success_url", "cancel_url"):
                self._required(params, name)
            items = params.get("line_items") or []
            if not items or not items[0].get("price"):
                raise StripeError(400, "invalid_request_error", "Missing required param: line_items[0][price].",
                                  "parameter_missing", "line_items[0][price]")  # fmt: skip
            price = items[0]["price"]
            if price not in self.prices:
                raise self._missing("price", price, "line_items[0][price]")
            customer = params.get("customer")
            if customer and customer not in self.customers:
                raise self._missing("customer", customer, "customer")
            session_id = self.new_id("cs_test")
            now = int(time.time())
            session = {"id": session_id, "object": "checkout.session", "livemode": False, "mode": "subscription",
                       "status": "open", "payment_status": "unpaid", "customer": customer,
                       "client_reference_id": params.get("client_reference_id"), "subscription": None,
                       "success_url": params["success_url"], "cancel_url": params["cancel_url"],
                       "metadata": params.get("metadata", {}), "price": price,
                       "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                       "created": now, "expires_at": now + 86400}  # fmt: skip
            self.checkout_sessions[session_id] = session
            return session
        if method == "GET" and not rest:  # list: ?customer=&status=, newest first
            found = [
                session for session in reversed(list(self.checkout_sessions.values()))
                if params.get("customer") in (None, session["customer"])
                and params.get("status") in (None, session["status"])
            ]  # fmt: skip
            limit = int(params.get("limit") or 10)
            return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                    "url": "/v1/checkout/sessions"}  # fmt: skip
        if not rest or rest[0] not in self.checkout_sessions:
            raise self._missing("checkout.session", rest[0] if rest else "")
        session = self.checkout_sessions[rest[0]]
        if method == "POST" and rest[1:] == ["expire"]:
            if session["status"] != "open":
                status = session["status"]
                raise StripeError(400, "invalid_request_error", 'Only Checkout Sessions with a status in ["open"] can '
                                  f'be expired. This Checkout Session has a status of "{status}".')  # fmt: skip
            session.update(status="expired", expires_at=int(time.time()), url=None)
        return session

    def _billing_portal_sessions(self, method: str, rest: list[str], params: dict) -> dict:
        customer = self._required(params, "customer")
        if customer not in self.customers:
            raise self._missing("customer", customer, "customer")
        session_id = self.new_id("bps")
        session = {"id": session_id, "object": "billing_portal.session", "livemode": False, "customer": customer,
                   "return_url": params.get("return_url"), "created": int(time.time()),
                   "url": f"https://billing.stripe.com/p/session/test_{session_id}"}  # fmt: skip
        self.portal_sessions[session_id] = session
        return session

    def _subscriptions(self, method: str, rest: list[str], params: dict) -> dict:
        if not rest and method == "GET":  # list: ?customer=&status= (all, or one status; default: not canceled)
            status, limit = params.get("status") or "", int(params.get("limit") or 10)

            def listed(sub: dict) -> bool:
                if params.get("customer") and sub["customer"] != params["customer"]:
                    return False
                return status == "all" or sub["status"] == status or (not status and sub["status"] != "canceled")

            found = [sub for sub in reversed(list(self.subscriptions.values())) if listed(sub)]
            return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/subscriptions"}
        if not rest or rest[0] not in self.subscriptions:
            raise self._missing("subscription", rest[0] if rest else "")
        subscription = self.subscriptions[rest[0]]
        if method == "DELETE":
            details = params.get("cancellation_details") or {}
            subscription.update(status="canceled", canceled_at=int(time.time()), cancellation_details={
                "comment": details.get("comment"), "feedback": details.get("feedback"),
                "reason": "cancellation_requested"})  # fmt: skip
        elif method == "POST":
            if "cancel_at_period_end" in params:
                subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
            for change in params.get("items") or []:
                self._item_update(subscription, change.get("id"), change.get("price"),
                                  params.get("proration_behavior", "create_prorations"))  # fmt: skip
        return subscription

    def _subscription_items(self, method: str, rest: list[str], params: dict) -> dict:
        for subscription in self.subscriptions.values():
            for item in subscription["items"]["data"]:
                if rest and item["id"] == rest[0]:
                    if method == "POST":
                        self._item_update(subscription, item["id"], params.get("price"),
                                          params.get("proration_behavior", "create_prorations"))  # fmt: skip
                    return item
        raise self._missing("subscription_item", rest[0] if rest else "")

    def _item_update(self, subscription: dict, item_id: str | None, price: str | None, proration: str) -> None:
        if price not in self.prices:
            raise self._missing("price", price or "", "items[0][price]")
        item = next((item for item in subscription["items"]["data"] if item["id"] == item_id), None)
        if item is None:
            raise self._missing("subscription_item", item_id or "", "items[0][id]")
        item["price"] = self.prices[price]
        self.item_updates.append({"subscription": subscription["id"], "item": item_id, "price": price,
                                  "proration_behavior": proration})  # fmt: skip

    def _invoices(self, method: str, rest: list[str], params: dict) -> dict:
        if rest:
            if rest[0] in self.invoices:
                return self.invoices[rest[0]]
            raise self._missing("invoice", rest[0])
        customer = params.get("customer")
        found = [invoice for invoice in self.invoices.values() if customer is None or invoice["customer"] == customer]
        found.sort(key=lambda invoice: invoice["created"], reverse=True)
        limit = int(params.get("limit", 10))
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/invoices"}

    def _invoice_payments(self, method: str, rest: list[str], params: dict) -> dict:
        if rest:
            if rest[0] in self.invoice_payments:
                return self.invoice_payments[rest[0]]
            raise self._missing("invoice_payment", rest[0])
        invoice = self._required(params, "invoice")
        found = [payment for payment in self.invoice_payments.values() if payment["invoice"] == invoice]
        return {"object": "list", "data": found, "has_more": False, "url": "/v1/invoice_payments"}

    def _refunds(self, method: str, rest: list[str], params: dict) -> dict:
        if method != "POST" or rest:
            if rest and rest[0] in self.refunds:
                return self.refunds[rest[0]]
            raise self._missing("refund", rest[0] if rest else "")
        intent = self._required(params, "payment_intent")
        paid = next((p for p in self.invoice_payments.values() if p["payment"]["payment_intent"] == intent), None)
        if paid is None:
            raise self._missing("payment_intent", intent, "payment_intent")
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent)
        amount = int(params.get("amount") or paid["amount_paid"] - refunded)
        if refunded >= paid["amount_paid"] or amount > paid["amount_paid"] - refunded:
            raise StripeError(400, "invalid_request_error", f"Charge for {intent} has already been refunded.",
                              "charge_already_refunded")  # fmt: skip
        refund = {"id": self.new_id("re"), "object": "refund", "amount": amount, "currency": paid["currency"],
                  "payment_intent": intent, "status": "succeeded", "reason": params.get("reason"),
                  "metadata": params.get("metadata", {}), "created": int(time.time())}  # fmt: skip
        self.refunds[refund["id"]] = refund
        return refund

    def _billing_meter_events(self, method: str, rest: list[str], params: dict) -> dict:
        event_name = self._required(params, "event_name")
        payload = params.get("payload") or {}
        if not payload.get("stripe_customer_id") or "value" not in payload:
            raise StripeError(400, "invalid_request_error", "payload needs stripe_customer_id and value.",
                              "parameter_missing", "payload")  # fmt: skip
        identifier = params.get("identifier") or self.new_id("mev")
        if any(event["identifier"] == identifier for event in self.meter_events):
            raise StripeError(400, "invalid_request_error", f"An event with identifier {identifier} already exists.",
                              "resource_already_exists", "identifier")  # fmt: skip
        event = {"object": "billing.meter_event", "livemode": False, "event_name": event_name,
                 "identifier": identifier, "payload": payload,
                 "timestamp": int(params.get("timestamp") or time.time()), "created": int(time.time())}  # fmt: skip
        self.meter_events.append(event)
        return event

    # --- helpers outside the wire ------------------------------------------------------------

    def add_price(self, unit_amount: int, currency: str = "usd") -> dict:
        price = {"id": self.new_id("price"), "object": "price", "livemode": False, "active": True,
                 "currency": currency, "unit_amount": unit_amount, "type": "recurring",
                 "recurring": {"interval": "month"}}  # fmt: skip
        self.prices[price["id"]] = price
        return price

    def add_customer(self, email: str = "owner@example.com") -> dict:
        return self._customers("POST", [], {"email": email})

    def fail_next(self, status: int = 500, type_: str = "api_error", message: str = "Something went wrong.",
                  code: str = "") -> None:  # fmt: skip
        self.failures.append(StripeError(status, type_, message, code))

    def complete_checkout(self, session_id: str, *, status: str = "active", period_days: int = 30) -> dict:
        """The customer paid on Stripe's page: the session completes with a new subscription and a
        paid first invoice. Answers the subscription."""
        with self.lock:
            session = self.checkout_sessions[session_id]
            if session["status"] != "open":
                raise StripeError(400, "invalid_request_error", f"This Checkout Session is {session['status']}: "
                                  "Stripe's page says so and takes no payment.")  # fmt: skip
            customer = session["customer"] or self.add_customer()["id"]
            now = int(time.time())
            subscription = {
                "id": self.new_id("sub"), "object": "subscription", "livemode": False, "customer": customer,
                "status": status, "cancel_at_period_end": False, "canceled_at": None, "created": now,
                "current_period_start": now, "current_period_end": now + period_days * 86400,
                "metadata": session["metadata"], "latest_invoice": None,
                "items": {"object": "list", "data": [{
                    "id": self.new_id("si"), "object": "subscription_item", "price": self.prices[session["price"]],
                    "quantity": 1, "current_period_start": now, "current_period_end": now + period_days * 86400,
                }], "has_more": False, "url": "/v1/subscription_items"},
            }  # fmt: skip
            self.subscriptions[subscription["id"]] = subscription
            session.update(status="complete", payment_status="paid", customer=customer,
                           subscription=subscription["id"])  # fmt: skip
        invoice = self.add_invoice(customer, self.prices[session["price"]]["unit_amount"], status="paid",
                                   subscription=subscription["id"])  # fmt: skip
        subscription["latest_invoice"] = invoice["id"]
        session["invoice"] = invoice["id"]
        return subscription

    def set_subscription(self, subscription_id: str, **fields: Any) -> dict:
        with self.lock:
            subscription = self.subscriptions[subscription_id]
            subscription.update(fields)
            if "current_period_end" in fields:
                subscription["items"]["data"][0]["current_period_end"] = fields["current_period_end"]
            return subscription

    def add_invoice(self, customer: str, amount: int, *, status: str = "paid", currency: str = "usd",
                    subscription: str | None = None, created: int | None = None) -> dict:  # fmt: skip
        invoice_id = self.new_id("in")
        number = f"HZ-{len(self.invoices) + 1:04d}"
        invoice = {"id": invoice_id, "object": "invoice", "livemode": False, "customer": customer,
                   "subscription": subscription, "number": number, "status": status, "currency": currency,
                   "amount_due": amount, "amount_paid": amount if status == "paid" else 0, "total": amount,
                   "created": created or int(time.time()),
                   "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
                   "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf"}  # fmt: skip
        self.invoices[invoice_id] = invoice
        if status == "paid":
            payment_id = self.new_id("inpay")
            self.invoice_payments[payment_id] = {
                "id": payment_id, "object": "invoice_payment", "livemode": False, "invoice": invoice_id,
                "amount_paid": amount, "amount_requested": amount, "currency": currency, "is_default": True,
                "status": "paid", "created": invoice["created"],
                "payment": {"type": "payment_intent", "payment_intent": self.new_id("pi")},
            }  # fmt: skip
        return invoice

    def event(self, type_: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
        """A webhook event as Stripe builds it: a snapshot of ``obj`` at this moment."""
        return {"id": event_id or self.new_id("evt"), "object": "event", "api_version": "2025-03-31.basil",
                "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": type_,
                "data": {"object": json.loads(json.dumps(obj))}}  # fmt: skip


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with ``payload``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver(client: Any, path: str, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
            signature: str | None = None) -> Any:  # fmt: skip
    """Post ``event`` to our webhook endpoint as Stripe does (a Django test Client or anything
    with the same ``post``)."""
    payload = json.dumps(event, indent=2)  # Stripe sends pretty-printed JSON
    header = sign(payload, secret, timestamp) if signature is None else signature
    return client.post(path, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
