"""Loopback fakes of the platforms' OAuth 2.0 endpoints (TikTok Login Kit, Reddit, Instagram) and of
the third-party OnlyFans/Fansly API.

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

The same module holds ``FakeCreatorApi``, the loopback third-party OnlyFans/Fansly API (chats,
messages, fans, mass messages, transactions, statistics, posts; cursor paging, per-minute limits),
described where it starts below.

No Django here: the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.fakes.loopback import LoopbackServer, QuietHandler

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
    refresh_delay: float = 0.0  # seconds a refresh_token grant waits before it is answered


class FakePlatforms(LoopbackServer):
    """The fake server; ``url(platform)`` gives the authorize and token URLs to configure."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                fake._authorize(self)

            def do_POST(self) -> None:
                fake._token(self)

        return Handler

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
            time.sleep(self.state.refresh_delay)  # a slow provider: a second refresh can start meanwhile
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


def _json(handler, status: int, payload: dict | bytes, headers: dict | None = None) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def _error(handler, error: str, description: str) -> None:
    _json(handler, 400, {"error": error, "error_description": description, "log_id": secrets.token_hex(8)})


# --- The third-party OnlyFans / Fansly API -----------------------------------------------------------
#
# OnlyFans and Fansly have no public API; agencies reach them through a third-party API provider.
# This fake speaks the wire format Huntaze's connector uses (apps/integrations/connectors.py,
# docs/integrations.md "Connector"): every path under ``<base>/accounts/<account id>/``, the API
# key as ``Authorization: Bearer <key>``, JSON in and out.
#
# Reads are cursor-paged change feeds, ordered by a sequence number that moves when a fan changes
# (messages and transactions only ever append), so "everything after my last cursor" is both the
# next page and the incremental sync:
#
#     GET fans|messages|transactions|chats?limit=<1..1000>&cursor=<opaque>
#     → 200 {"data": [...], "pagination": {"next_cursor": "<opaque>", "has_more": bool}}
#
# ``next_cursor`` is always given (the position after the last item, or the cursor sent when the
# page is empty), so a client stores it and asks again later for what changed. Writes:
#
#     POST chats/<fan id>/messages {"text", "price": "9.99"|null, "media_count"}   Idempotency-Key
#     POST mass-messages {"fan_ids": [...], "text", "price", "media_count"}          Idempotency-Key
#     POST posts {"text", "media_urls": [...], "scheduled_at": iso|null};  GET posts/<id>
#     GET  me;  GET statistics
#
# A repeated Idempotency-Key answers the first result (200 instead of 201), never a second message.
# Errors: {"error": {"code", "message"}} with 401 (bad key), 403 (key of another account, or a fan
# who blocked the creator: fan ids starting "blocked-"), 404 (unknown fan or path), 422 (text too
# long or empty), 429 with Retry-After when the key's per-minute budget is spent, and whatever
# ``fail_next`` injects (5xx outages, 429s).

API_TEXT_LIMIT = 1000
API_PAGE_MAX = 1000


def _iso(seconds: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _wire(item: dict) -> bytes:
    """An item of a feed as the API sends it (its "_" keys are the fake's own), encoded once when
    it is written rather than on every page that carries it: the fake runs in the process it
    serves, so its encoding would be counted as the client's time."""
    return json.dumps({k: v for k, v in item.items() if not k.startswith("_")}).encode()


def _seq(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.removeprefix("seq:")) if raw.startswith("seq:") else None
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class ApiAccount:
    """One creator account at the API provider: fans, messages and transactions as change feeds."""

    account_id: str
    api_key: str
    seq: int = 0
    fans: dict[str, dict] = field(default_factory=dict)  # id → fan (with its current "_seq")
    fan_feed: list[tuple[int, str]] = field(default_factory=list)  # (seq, fan id), stale entries skipped
    messages: list[dict] = field(default_factory=list)  # append-only, each with "_seq"
    transactions: list[dict] = field(default_factory=list)
    sent: dict[str, dict] = field(default_factory=dict)  # idempotency key → answer
    mass: dict[str, dict] = field(default_factory=dict)
    posts: dict[str, dict] = field(default_factory=dict)
    clock: float = 1_780_000_000.0  # the fake's "now" for generated data (deterministic)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def fan_public(self, fan_id: str) -> dict:
        fan = self.fans[fan_id]
        return {"id": fan["id"], "username": fan["username"], "name": fan["name"]}

    def put_fan(self, fan_id: str, *, username: str | None = None, name: str = "", state: str = "active") -> dict:
        seq = self._next()
        self.clock += 1
        fan = self.fans.get(fan_id) or {"id": fan_id, "subscribed_at": _iso(self.clock)}
        fan.update(
            username=username or fan.get("username") or fan_id, name=name or fan.get("name", ""),
            subscription={"state": state, "started_at": fan["subscribed_at"],
                          "expires_at": _iso(self.clock + 30 * 86400), "renew": state == "active"},
            updated_at=_iso(self.clock), _seq=seq,
        )  # fmt: skip
        fan["_wire"] = _wire(fan)
        self.fans[fan_id] = fan
        self.fan_feed.append((seq, fan_id))
        return fan

    def add_message(self, fan_id: str, text: str, *, from_fan: bool = True, media_count: int = 0) -> dict:
        self.clock += 1
        message = {
            "id": f"m{self.seq + 1}", "chat_id": fan_id, "fan": self.fan_public(fan_id), "from_fan": from_fan,
            "text": text, "media_count": media_count, "price": None, "created_at": _iso(self.clock),
            "_seq": self._next(),
        }  # fmt: skip
        message["_wire"] = _wire(message)
        self.messages.append(message)
        return message

    def add_transaction(self, fan_id: str, kind: str, amount: str, **refs) -> dict:
        self.clock += 1
        transaction = {
            "id": f"t{self.seq + 1}", "type": kind, "amount": amount, "currency": "USD",
            "fan": self.fan_public(fan_id), "created_at": _iso(self.clock), **refs, "_seq": self._next(),
        }  # fmt: skip
        transaction["_wire"] = _wire(transaction)
        self.transactions.append(transaction)
        return transaction


@dataclass
class ApiState:
    accounts: dict[str, ApiAccount] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    faults: list[tuple[int, float | None]] = field(default_factory=list)  # (status, retry_after) per request
    limit_per_minute: int = 100_000
    window: dict[str, tuple[float, int]] = field(default_factory=dict)  # key → (window start, count)
    record_requests: bool = True


class FakeCreatorApi(LoopbackServer):
    """The loopback third-party OnlyFans/Fansly API. ``account(id, key)`` creates an account;
    ``base_url`` (``http://127.0.0.1:<port>/v1``) is what a connection's API base URL is set to."""

    def __init__(self) -> None:
        self.state = ApiState()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real API behind a load balancer

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        return Handler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        with self.lock:
            self.state = ApiState()

    def account(self, account_id: str = "acct-1", api_key: str = "key-1") -> ApiAccount:
        with self.lock:
            account = self.state.accounts.get(account_id) or ApiAccount(account_id, api_key)
            self.state.accounts[account_id] = account
            return account

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None, after: int = 0) -> None:
        """After ``after`` good requests, the next ``times`` answer ``status`` (with Retry-After when given)."""
        with self.lock:
            self.state.faults.extend([(0, None)] * after + [(status, retry_after)] * times)

    def requests_to(self, method: str, suffix: str) -> list[dict]:
        with self.lock:
            return [r for r in self.state.requests if r["method"] == method and r["path"].endswith(suffix)]

    def seed(self, account: ApiAccount, *, fans: int, messages_per_fan: int = 0, transactions_per_fan: int = 0) -> None:
        """Generated data, deterministic: fans fan-1..fan-N, their messages and transactions."""
        with self.lock:
            for n in range(1, fans + 1):
                account.put_fan(f"fan-{n}", username=f"fan{n}", name=f"Fan {n}")
            for n in range(1, fans + 1):
                for k in range(messages_per_fan):
                    account.add_message(f"fan-{n}", f"hello {k} from fan {n}")
                for k in range(transactions_per_fan):
                    account.add_transaction(f"fan-{n}", "tip", f"{5 + k}.00")

    # --- the wire -----------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        segments = [s for s in parts.path.split("/") if s]
        query = dict(parse_qsl(parts.query))
        with self.lock:
            if self.state.record_requests:
                self.state.requests.append({
                    "method": method, "path": parts.path, "query": query, "body": raw.decode(errors="replace"),
                    "headers": {k.lower(): v for k, v in handler.headers.items()},
                })  # fmt: skip
            fault = self.state.faults.pop(0) if self.state.faults else None
        if fault is not None and fault[0]:
            status, retry_after = fault
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            code = "rate_limited" if status == 429 else "unavailable"
            return _json(handler, status, {"error": {"code": code, "message": "Injected fault."}}, headers)
        if len(segments) < 4 or segments[0] != "v1" or segments[1] != "accounts":
            return _api_error(handler, 404, "not_found", "No such endpoint.")
        account_id, resource = segments[2], segments[3:]
        key = (handler.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        with self.lock:
            known = {a.api_key: a for a in self.state.accounts.values()}
            account = self.state.accounts.get(account_id)
            limited = self._spend(key) if key in known else None
        if key not in known:
            return _api_error(handler, 401, "unauthenticated", "The API key is missing or invalid.")
        if account is None or account.api_key != key:
            return _api_error(handler, 403, "forbidden", "This API key does not belong to that account.")
        if limited is not None:
            return _json(
                handler, 429, {"error": {"code": "rate_limited", "message": "Too many requests this minute."}},
                {"Retry-After": str(limited), "X-RateLimit-Limit": str(self.state.limit_per_minute),
                 "X-RateLimit-Remaining": "0"},
            )  # fmt: skip
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _api_error(handler, 400, "bad_json", "The body is not JSON.")
        with self.lock:
            answer = self._route(account, method, resource, query, body, handler.headers.get("Idempotency-Key", ""))
        status, payload = answer
        return _json(handler, status, payload)

    def _spend(self, key: str) -> int | None:
        """Count one request against the key's minute; seconds to wait when the budget is spent."""
        now = time.time()
        start, count = self.state.window.get(key, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        if count >= self.state.limit_per_minute:
            return max(1, int(60 - (now - start)) + 1)
        self.state.window[key] = (start, count + 1)
        return None

    def _route(self, account: ApiAccount, method: str, resource: list[str], query: dict, body: dict, key: str):
        name = resource[0]
        if method == "GET" and len(resource) == 1 and name in {"fans", "messages", "transactions", "chats"}:
            return self._page(account, name, query)
        if method == "GET" and resource == ["me"]:
            return 200, {"data": {"id": account.account_id, "username": f"creator-{account.account_id}",
                                  "name": "Fake Creator", "is_authenticated": True}}  # fmt: skip
        if method == "GET" and resource == ["statistics"]:
            revenue = sum(float(t["amount"]) for t in account.transactions)
            return 200, {"data": {
                "fans": {"total": len(account.fans),
                         "active": sum(1 for f in account.fans.values() if f["subscription"]["state"] == "active")},
                "messages": {"total": len(account.messages)},
                "revenue": {"total": f"{revenue:.2f}", "currency": "USD"},
            }}  # fmt: skip
        if method == "POST" and len(resource) == 3 and name == "chats" and resource[2] == "messages":
            return self._send(account, resource[1], body, key)
        if method == "POST" and resource == ["mass-messages"]:
            return self._send_mass(account, body, key)
        if method == "POST" and resource == ["posts"]:
            if not str(body.get("text") or "").strip():
                return 422, {"error": {"code": "invalid", "message": "A post needs text."}}
            if key and key in account.posts:
                return 200, {"data": account.posts[key]}
            account.clock += 1
            status = "scheduled" if body.get("scheduled_at") else "published"
            post = {"id": f"p{account._next()}", "status": status, "url": f"https://example.invalid/posts/{account.seq}",
                    "created_at": _iso(account.clock)}  # fmt: skip
            account.posts[key or post["id"]] = post
            return 201, {"data": post}
        if method == "GET" and len(resource) == 2 and name == "posts":
            post = next((p for p in account.posts.values() if p["id"] == resource[1]), None)
            if post is None:
                return 404, {"error": {"code": "not_found", "message": "No such post."}}
            return 200, {"data": post}
        return 404, {"error": {"code": "not_found", "message": "No such endpoint."}}

    def _page(self, account: ApiAccount, name: str, query: dict):
        after = _seq(query.get("cursor"))
        if after is None:
            return 400, {"error": {"code": "bad_cursor", "message": "The cursor is not one this API gave."}}
        try:
            limit = int(query.get("limit", 100))
        except ValueError:
            limit = 0
        if not 1 <= limit <= API_PAGE_MAX:
            return 400, {"error": {"code": "bad_limit", "message": f"limit must be 1 to {API_PAGE_MAX}."}}
        import bisect

        if name in {"fans", "chats"}:
            start = bisect.bisect_right(account.fan_feed, (after, "\uffff"))
            items, seqs = [], []
            for position in range(start, len(account.fan_feed)):  # not a slice: no copy of the feed's tail
                seq, fan_id = account.fan_feed[position]
                fan = account.fans[fan_id]
                if fan["_seq"] != seq:
                    continue  # an older version of a fan that changed since
                if name == "fans":
                    items.append(fan["_wire"])
                else:
                    chat = {"id": fan_id, "fan": account.fan_public(fan_id), "updated_at": fan["updated_at"]}
                    items.append(json.dumps(chat).encode())
                seqs.append(seq)
                if len(items) > limit:
                    break
        else:
            feed = account.messages if name == "messages" else account.transactions
            start = bisect.bisect_right(feed, after, key=lambda item: item["_seq"])
            chosen = feed[start : start + limit + 1]
            items = [item["_wire"] for item in chosen]
            seqs = [item["_seq"] for item in chosen]
        has_more = len(items) > limit
        items, seqs = items[:limit], seqs[:limit]
        next_cursor = _cursor(seqs[-1]) if seqs else (query.get("cursor") or _cursor(0))
        pagination = json.dumps({"next_cursor": next_cursor, "has_more": has_more}).encode()
        return 200, b'{"data": [' + b", ".join(items) + b'], "pagination": ' + pagination + b"}"

    @staticmethod
    def _check_text(account: ApiAccount, body: dict):
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return 422, {"error": {"code": "invalid", "message": "The message text is empty."}}
        if len(text) > API_TEXT_LIMIT:
            return 422, {"error": {"code": "text_too_long", "message": f"At most {API_TEXT_LIMIT} characters."}}
        return None

    def _send(self, account: ApiAccount, fan_id: str, body: dict, key: str):
        if key and key in account.sent:
            return 200, {"data": account.sent[key]}
        refused = self._check_text(account, body)
        if refused:
            return refused
        if fan_id.startswith("blocked-"):
            return 403, {"error": {"code": "fan_blocked", "message": "This fan has blocked the creator."}}
        if fan_id not in account.fans:
            return 404, {"error": {"code": "fan_not_found", "message": "No chat with this fan."}}
        message = account.add_message(
            fan_id, body["text"], from_fan=False, media_count=int(body.get("media_count") or 0)
        )
        message["price"] = body.get("price")
        message["_wire"] = _wire(message)
        answer = {"id": message["id"], "created_at": message["created_at"]}
        account.sent[key or message["id"]] = answer
        return 201, {"data": answer}

    def _send_mass(self, account: ApiAccount, body: dict, key: str):
        if key and key in account.mass:
            return 200, {"data": account.mass[key]}
        refused = self._check_text(account, body)
        if refused:
            return refused
        fan_ids = body.get("fan_ids")
        if not isinstance(fan_ids, list) or not fan_ids:
            return 422, {"error": {"code": "invalid", "message": "fan_ids must be a non-empty list."}}
        rejected = [f for f in fan_ids if str(f).startswith("blocked-") or f not in account.fans]
        for fan_id in fan_ids:
            if fan_id not in rejected:
                account.add_message(fan_id, body["text"], from_fan=False)
        account.clock += 1
        answer = {"id": f"mm{account._next()}", "created_at": _iso(account.clock), "rejected_fan_ids": rejected,
                  "queued": len(fan_ids) - len(rejected)}  # fmt: skip
        account.mass[key or answer["id"]] = answer
        return 201, {"data": answer}


def _api_error(handler, status: int, code: str, message: str) -> None:
    _json(handler, status, {"error": {"code": code, "message": message}})
