"""A loopback fake of the Instagram Graph host's token endpoints.

- ``GET /access_token?grant_type=ig_exchange_token&client_secret=<app secret>&access_token=<short-lived
  token>`` exchanges the 1-hour token of a sign-in for a long-lived one: ``{"access_token",
  "token_type": "bearer", "expires_in": 5184000}``. A wrong client secret is refused (code 101).
- ``GET /refresh_access_token?grant_type=ig_refresh_token&access_token=<long-lived token>``
  answers a new 60-day token (the old one keeps working until it expires, as on Instagram). As on
  Instagram, only long-lived tokens can be refreshed: a token this fake did not hand out as
  long-lived (a sign-in's short-lived token) is refused with code 190.

Errors are the Graph API's shape, HTTP 400 ``{"error": {"message", "type": "OAuthException",
"code", "error_subcode", "fbtrace_id"}}``.

Faults (on both endpoints): ``revoke()`` (code 190: every token refused), ``hold_account(subcode)``
(code 190 with a subcode such as 459, a checkpointed account), ``fail_with(status, times)``
(5xx/429 outages).

Standard library only.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import LoopbackServer, QuietHandler


@dataclass
class State:
    requests: list[dict] = field(default_factory=list)
    revoked: bool = False
    held_subcode: int | None = None
    fail_status: int = 0
    fail_times: int = 0
    long_lived: set[str] = field(default_factory=set)
    client_secret: str = "instagram-app-secret"  # the app secret of tests/fakes/platforms.py's CLIENTS


class FakeInstagramGraph(LoopbackServer):
    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                fake._get(self)

        return Handler

    def reset(self) -> None:
        with self.lock:
            self.state = State()

    def revoke(self) -> None:
        with self.lock:
            self.state.revoked = True

    def hold_account(self, subcode: int = 459) -> None:
        with self.lock:
            self.state.held_subcode = subcode

    def fail_with(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.state.fail_status, self.state.fail_times = status, times

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query))
        with self.lock:
            state = self.state
            state.requests.append({"path": parts.path, **query})
            grant = {"/access_token": "ig_exchange_token", "/refresh_access_token": "ig_refresh_token"}.get(parts.path)
            if grant is None:
                return _json(
                    handler, 404, {"error": {"message": "Unknown path", "type": "OAuthException", "code": 2500}}
                )
            if state.fail_times > 0:
                state.fail_times -= 1
                return _json(handler, state.fail_status, {"error": {"message": "Please retry", "code": 2}})
            token = query.get("access_token")
            if query.get("grant_type") != grant or not token:
                return _graph_error(handler, "Unsupported grant_type or missing access_token", 100, None)
            if grant == "ig_exchange_token" and query.get("client_secret") != state.client_secret:
                return _graph_error(handler, "Error validating client secret.", 101, None)
            if state.held_subcode is not None:
                return _graph_error(handler, "The user is checkpointed.", 190, state.held_subcode)
            if state.revoked:
                return _graph_error(
                    handler, "Error validating access token: the session has been invalidated.", 190, 460
                )
            if grant == "ig_refresh_token" and token not in state.long_lived:
                return _graph_error(handler, "Only long-lived access tokens can be refreshed.", 190, None)
            new_token = "IGAA" + secrets.token_urlsafe(24)
            state.long_lived.add(new_token)
        _json(handler, 200, {"access_token": new_token, "token_type": "bearer", "expires_in": 5184000})


def _graph_error(handler: BaseHTTPRequestHandler, message: str, code: int, subcode: int | None) -> None:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    _json(handler, 400, {"error": error})


def _json(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
