"""A loopback fake of a CRM's webhook receiver, checking signatures as a real receiver would.

``POST /hooks/<anything>`` with a JSON body: the fake verifies ``Huntaze-Signature: t=<unix>,
v1=<hex HMAC-SHA256 of "t.body">`` with the secret it was given (``secret``), drops an event id it
has already taken (answering 200, like a receiver that is idempotent by ``Huntaze-Event-Id``), and
records what it received. Faults: ``fail_next(status, times)`` answers that status the next
``times`` requests (5xx/429 outages, 4xx refusals); ``redirect_to`` answers a 302 there.

``sign(secret, body)`` builds the header a CRM sends us on the inbound endpoint.

Standard library only: the receiver does its own HMAC, so a wrong signing scheme on our side fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.fakes.loopback import LoopbackServer, QuietHandler


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _valid(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class State:
    secret: str = ""
    received: list[dict] = field(default_factory=list)  # accepted events, in order
    requests: list[dict] = field(default_factory=list)  # every request: headers, status answered
    seen_ids: set[str] = field(default_factory=set)
    fail_status: int = 0
    fail_times: int = 0
    redirect_to: str = ""


class FakeCRM(LoopbackServer):
    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                fake._receive(self)

        return Handler

    @property
    def url(self) -> str:
        return self.url_for("127.0.0.1")

    def url_for(self, host: str, scheme: str = "http") -> str:
        """The receiver's URL under another host name (one a test resolver answers 127.0.0.1 for)."""
        return f"{scheme}://{host}:{self.port}/hooks/crm"

    def reset(self, secret: str = "") -> None:
        with self.lock:
            self.state = State(secret=secret)

    def fail_next(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.state.fail_status, self.state.fail_times = status, times

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, payload: dict, headers=None) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _receive(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self.lock:
            state = self.state
            record = {"path": handler.path, "headers": headers, "body": body}
            state.requests.append(record)
            if state.redirect_to:
                record["status"] = 302
                return self._answer(handler, 302, {}, {"Location": state.redirect_to})
            if state.fail_times > 0:
                state.fail_times -= 1
                record["status"] = state.fail_status
                return self._answer(handler, state.fail_status, {"error": "injected failure"})
            if not _valid(state.secret, headers.get("huntaze-signature", ""), body):
                record["status"] = 401
                return self._answer(handler, 401, {"error": "bad signature"})
            event_id = headers.get("huntaze-event-id", "")
            record["status"] = 200
            if event_id in state.seen_ids:
                return self._answer(handler, 200, {"duplicate": True})
            state.seen_ids.add(event_id)
            state.received.append(json.loads(body))
        self._answer(handler, 200, {"ok": True})
