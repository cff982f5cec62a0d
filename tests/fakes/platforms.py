"""Loopback fakes of the platforms' OAuth 2.0 endpoints: TikTok Login Kit, Reddit, Instagram.

A small threaded ``http.server`` on 127.0.0.1 (ephemeral port) that speaks each provider's real
request and response shapes, so authlib's ``OAuth2Session`` is exercised on the real wire:

- TikTok: ``GET /tiktok/v2/auth/authorize/`` (``client_key``, ``scope`` comma-separated,
  ``response_type=code``, ``redirect_uri``, ``state``, ``code_challenge``,
  ``code_challenge_method=S256``) redirects back with ``code``, ``scopes`` and ``state``;
  ``POST /tiktok/v2/oauth/token/`` (form: ``client_key``, ``client_secret``, ``code``,
  ``grant_type``, ``redirect_uri``, ``code_verifier`` / ``refresh_token``) answers ``access_token``,
  ``expires_in``, ``open_id``, ``refresh_expires_in``, ``refresh_token``, ``scope``,
  ``token_type``. Refresh tokens ROTATE: each refresh answers a new one and the old one dies
  (``invalid_grant`` afterwards), as TikTok's do.
- Reddit: ``GET /reddit/api/v1/authorize`` (``duration=permanent``), ``POST
  /reddit/api/v1/access_token`` with HTTP basic client authentication; refresh tokens last.
- Instagram (business login): ``GET /instagram/oauth/authorize``, ``POST
  /instagram/oauth/access_token`` (client credentials in the form) answering
  ``{"data": [{"access_token", "user_id", "permissions"}]}``; no refresh token.

Errors are the providers' JSON: ``{"error": "invalid_grant", "error_description": ..., "log_id"}``
with HTTP 400. Faults: ``deny_next`` (the authorize step redirects back with
``error=access_denied``), ``fail_token_with`` (the next token call answers that HTTP status, for
5xx/429 outages), ``revoke(platform)`` (every refresh token of a platform stops working).

No Django here: the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

CLIENTS = {
    "tiktok": ("tiktok-client-key", "tiktok-client-secret"),
    "reddit": ("reddit-client-id", "reddit-client-secret"),
    "instagram": ("instagram-app-id", "instagram-app-secret"),
}
AUTHORIZE_PATHS = {
    "/tiktok/v2/auth/authorize/": "tiktok",
    "/reddit/api/v1/authorize": "reddit",
    "/instagram/oauth/authorize": "instagram",
}
TOKEN_PATHS = {
    "/tiktok/v2/oauth/token/": "tiktok",
    "/reddit/api/v1/access_token": "reddit",
    "/instagram/oauth/access_token": "instagram",
}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Grant:
    platform: str
    redirect_uri: str
    scope: str
    challenge: str
    challenge_method: str


@dataclass
class State:
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token → (platform, scope)
    token_requests: list[dict] = field(default_factory=list)
    authorize_requests: list[dict] = field(default_factory=list)
    deny_next: bool = False
    fail_token_with: int | None = None
    access_expires_in: int = 86400
    refresh_expires_in: int = 31536000


class FakePlatforms:
    """The fake server; ``url(platform)`` gives the authorize and token URLs to configure."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> FakePlatforms:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake._authorize(self)

            def do_POST(self) -> None:
                fake._token(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakePlatforms:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings_for(self, platform: str) -> dict:
        authorize = next(path for path, name in AUTHORIZE_PATHS.items() if name == platform)
        token = next(path for path, name in TOKEN_PATHS.items() if name == platform)
        client_id, client_secret = CLIENTS[platform]
        return {
            "authorize_url": self.base_url + authorize,
            "token_url": self.base_url + token,
            "client_id": client_id,
            "client_secret": client_secret,
        }

    def reset(self) -> None:
        with self.lock:
            self.state = State()

    def revoke(self, platform: str) -> None:
        with self.lock:
            self.state.refresh_tokens = {
                token: value for token, value in self.state.refresh_tokens.items() if value[0] != platform
            }

    # --- handlers ---------------------------------------------------------------------------------

    def _authorize(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        platform = AUTHORIZE_PATHS.get(parts.path)
        if platform is None:
            return _json(handler, 404, {"error": "not_found"})
        params = dict(parse_qsl(parts.query))
        with self.lock:
            self.state.authorize_requests.append({"platform": platform, **params})
            deny, self.state.deny_next = self.state.deny_next, False
        id_param = "client_key" if platform == "tiktok" else "client_id"
        if params.get(id_param) != CLIENTS[platform][0] or params.get("response_type") != "code":
            return _json(handler, 400, {"error": "invalid_request", "error_description": f"bad {id_param}"})
        if platform == "reddit" and params.get("duration") != "permanent":
            return _json(handler, 400, {"error": "invalid_request", "error_description": "duration"})
        redirect_uri = params.get("redirect_uri", "")
        back = {"state": params.get("state", "")}
        if deny:
            back |= {"error": "access_denied", "error_description": "The user denied the request."}
        else:
            code = secrets.token_urlsafe(16)
            with self.lock:
                self.state.grants[code] = Grant(
                    platform, redirect_uri, params.get("scope", ""), params.get("code_challenge", ""),
                    params.get("code_challenge_method", ""),
                )  # fmt: skip
            back = {"code": code, **back}
            if platform == "tiktok":
                back["scopes"] = params.get("scope", "")
        handler.send_response(302)
        handler.send_header("Location", redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(back))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _token(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        platform = TOKEN_PATHS.get(parts.path)
        if platform is None:
            return _json(handler, 404, {"error": "not_found"})
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(handler.rfile.read(length).decode()))
        with self.lock:
            self.state.token_requests.append({"platform": platform, "headers": dict(handler.headers), **form})
            fail, self.state.fail_token_with = self.state.fail_token_with, None
        if fail:
            headers = {"Retry-After": "30"} if fail == 429 else {}
            return _json(handler, fail, {"error": "server_error", "error_description": "outage"}, headers)
        if not self._client_ok(platform, handler, form):
            return _json(
                handler, 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                grant = self.state.grants.pop(form.get("code", ""), None)
            if grant is None or grant.platform != platform:
                return _error(handler, "invalid_grant", "Authorization code is expired or was already used.")
            if grant.redirect_uri != form.get("redirect_uri"):
                return _error(handler, "invalid_grant", "redirect_uri does not match.")
            if grant.challenge_method != "S256" or s256(form.get("code_verifier", "")) != grant.challenge:
                return _error(handler, "invalid_grant", "Code verifier or code challenge is invalid.")
            return _json(handler, 200, self._issue(platform, grant.scope))
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            with self.lock:
                found = self.state.refresh_tokens.get(token)
                if found is not None and platform == "tiktok":
                    del self.state.refresh_tokens[token]  # rotation: the old refresh token dies
            if found is None or found[0] != platform:
                return _error(handler, "invalid_grant", "Refresh token is invalid or expired.")
            answer = self._issue(platform, found[1], rotate=platform == "tiktok")
            if platform != "tiktok":
                answer["refresh_token"] = token
            return _json(handler, 200, answer)
        return _error(handler, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def _client_ok(self, platform: str, handler, form: dict) -> bool:
        client_id, client_secret = CLIENTS[platform]
        if platform == "tiktok":
            return form.get("client_key") == client_id and form.get("client_secret") == client_secret
        if platform == "reddit":
            expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
            return handler.headers.get("Authorization") == expected
        return form.get("client_id") == client_id and form.get("client_secret") == client_secret

    def _issue(self, platform: str, scope: str, rotate: bool = True) -> dict:
        access = "act." + secrets.token_urlsafe(24)
        refresh = "rft." + secrets.token_urlsafe(24)
        with self.lock:
            expires_in, refresh_expires_in = self.state.access_expires_in, self.state.refresh_expires_in
            if platform != "instagram":
                self.state.refresh_tokens[refresh] = (platform, scope)
        if platform == "tiktok":
            return {
                "access_token": access, "expires_in": expires_in, "open_id": "open-id-123",
                "refresh_expires_in": refresh_expires_in, "refresh_token": refresh, "scope": scope,
                "token_type": "Bearer",
            }  # fmt: skip
        if platform == "reddit":
            return {
                "access_token": access, "token_type": "bearer", "expires_in": expires_in, "refresh_token": refresh,
                "scope": scope,
            }  # fmt: skip
        return {"data": [{"access_token": access, "user_id": "17841400000000", "permissions": scope}]}


def _json(handler, status: int, payload: dict, headers: dict | None = None) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def _error(handler, error: str, description: str) -> None:
    _json(handler, 400, {"error": error, "error_description": description, "log_id": secrets.token_hex(8)})
