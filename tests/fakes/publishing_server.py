"""Loopback fakes of the platforms' publishing APIs: TikTok Content Posting, Instagram Graph
(content publishing) and Reddit's submit, plus a plain file host for the media they fetch.

A threaded ``http.server`` on 127.0.0.1 (ephemeral port) speaking each API's real request and
answer shapes, so apps/integrations/publishing.py runs its real HTTP client against it:

- TikTok (``/tiktok``): ``POST /v2/post/publish/creator_info/query/``, ``/video/init/``
  (``PULL_FROM_URL`` only from a verified prefix, ``FILE_UPLOAD`` with TikTok's chunk rules,
  answering an ``upload_url`` that takes ``PUT`` chunks with ``Content-Range``),
  ``/content/init/`` (photos), ``/status/fetch/``. Every answer is ``{"data": {...}, "error":
  {"code", "message", "log_id"}}``. More than 6 inits a minute for one token answer 429
  ``rate_limit_exceeded``, as TikTok does.
- Instagram (``/instagram/<version>``): ``GET /{ig-user-id}/content_publishing_limit``, ``POST
  /{ig-user-id}/media`` (image, REELS video, carousel items and CAROUSEL), ``GET
  /{container-id}?fields=status_code``, ``POST /{ig-user-id}/media_publish`` (a container is
  published once), ``GET /{media-id}?fields=permalink``. Errors are Graph's ``{"error":
  {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.
- Reddit (``/reddit``): ``POST /api/submit`` (form, ``api_type=json``) answering ``{"json":
  {"errors": [...], "data": {...}}}``; a User-Agent is required.
- ``GET /media/<name>``: files registered with ``host_file``.

Faults: ``revoke(token)`` (the platform answers its "token invalid" error), ``fail_next(platform,
status, body, headers)`` (the next API call of that platform answers that), ``processing_polls``
(status checks that answer "still processing" first), ``publishing_quota`` (Instagram's usage).

No Django here: the standard library only.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import LoopbackServer, QuietHandler

MB = 1024 * 1024
TIKTOK_INITS_PER_MINUTE = 6
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@dataclass
class Upload:
    video_size: int
    chunk_size: int
    total_chunk_count: int
    received: dict[int, bytes] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return sum(len(chunk) for chunk in self.received.values()) == self.video_size


@dataclass
class State:
    reddit_post_url: str = ""  # when set, Reddit answers this as the new post's url (a hostile answer)
    tokens: dict[str, str] = field(default_factory=dict)  # token → platform
    revoked: set[str] = field(default_factory=set)
    faults: dict[str, list[tuple[int, object, dict]]] = field(default_factory=lambda: defaultdict(list))
    requests: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    verified_prefixes: list[str] = field(default_factory=list)
    processing_polls: int = 1
    tiktok_inits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tiktok_publishes: dict[str, dict] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    containers: dict[str, dict] = field(default_factory=dict)
    media: dict[str, dict] = field(default_factory=dict)
    reddit_posts: list[dict] = field(default_factory=list)
    publishing_quota: int = 0
    tiktok_fail_reason: str = ""  # set: processing ends FAILED with this reason
    instagram_final: str = ""  # set: containers end with this status_code (ERROR, EXPIRED)
    privacy_level_options: list[str] = field(
        default_factory=lambda: ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    )


class FakePublishing(LoopbackServer):
    """``start()`` → serve on a free port; ``reset()`` between tests; ``stop()``."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

        return Handler

    def settings(self) -> dict:
        return {
            "TIKTOK_API_URL": f"{self.base_url}/tiktok",
            "INSTAGRAM_GRAPH_URL": f"{self.base_url}/instagram",
            "REDDIT_API_URL": f"{self.base_url}/reddit",
        }

    def reset(self) -> None:
        with self.lock:
            self.state = State()

    # --- test controls -----------------------------------------------------------------------

    def add_token(self, platform: str, token: str) -> None:
        with self.lock:
            self.state.tokens[token] = platform

    def revoke(self, token: str) -> None:
        with self.lock:
            self.state.revoked.add(token)

    def fail_next(self, platform: str, status: int, body: object, headers: dict | None = None) -> None:
        with self.lock:
            self.state.faults[platform].append((status, body, headers or {}))

    def host_file(self, name: str, content: bytes) -> str:
        with self.lock:
            self.state.files[name] = content
        return f"{self.base_url}/media/{name}"

    def verify_prefix(self, prefix: str) -> None:
        with self.lock:
            self.state.verified_prefixes.append(prefix)

    def calls(self, platform: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.state.requests if platform is None or r["platform"] == platform]

    # --- dispatch ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        platform = parts.path.strip("/").split("/")[0]
        record = {
            "platform": platform, "method": method, "path": parts.path, "query": dict(parse_qsl(parts.query)),
            "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body,
        }  # fmt: skip
        with self.lock:
            self.state.requests.append(record)
            fault = None
            if platform in ("tiktok", "instagram", "reddit") and self.state.faults[platform]:
                fault = self.state.faults[platform].pop(0)
        if fault is not None:
            status, payload, headers = fault
            return _json(handler, status, payload, headers)
        if platform == "media" and method == "GET":
            return self._media(handler, parts.path.split("/", 2)[2])
        if platform == "tiktok":
            return self._tiktok(handler, method, parts.path.removeprefix("/tiktok"), body, record)
        if platform == "instagram":
            return self._instagram(handler, method, parts.path, record)
        if platform == "reddit" and method == "POST" and parts.path == "/reddit/api/submit":
            return self._reddit(handler, body, record)
        _json(handler, 404, {"error": "not_found"})

    def _media(self, handler, name: str) -> None:
        content = self.state.files.get(name)
        if content is None:
            return _json(handler, 404, {"error": "no such file"})
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def _bearer(self, record: dict, platform: str) -> str | None:
        """The valid token of the call, or None (revoked, unknown, or another platform's)."""
        value = record["headers"].get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or self.state.tokens.get(token) != platform or token in self.state.revoked:
            return None
        return token

    # --- TikTok ------------------------------------------------------------------------------

    def _tiktok_answer(self, handler, status: int, data: dict, code: str = "ok", message: str = "") -> None:
        _json(handler, status, {"data": data, "error": {"code": code, "message": message, "log_id": _log_id()}})

    def _tiktok(self, handler, method: str, path: str, body: bytes, record: dict) -> None:
        if method == "PUT" and path.startswith("/upload/"):
            return self._tiktok_chunk(handler, path.removeprefix("/upload/"), body, record)
        token = self._bearer(record, "tiktok")
        if token is None:
            return self._tiktok_answer(
                handler, 401, {}, "access_token_invalid",
                "The access token is invalid or not found in the request.",
            )  # fmt: skip
        if not record["headers"].get("content-type", "").startswith("application/json"):
            return self._tiktok_answer(handler, 400, {}, "invalid_params", "Content-Type must be application/json.")
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return self._tiktok_answer(handler, 400, {}, "invalid_params", "The request body is not JSON.")
        if path == "/v2/post/publish/creator_info/query/":
            return self._tiktok_answer(handler, 200, {
                "creator_avatar_url": "https://p16.tiktokcdn.example/avatar.jpeg", "creator_username": "velvetstar",
                "creator_nickname": "Velvet Star", "privacy_level_options": self.state.privacy_level_options,
                "comment_disabled": False, "duet_disabled": False, "stitch_disabled": True,
                "max_video_post_duration_sec": 600,
            })  # fmt: skip
        if path in ("/v2/post/publish/video/init/", "/v2/post/publish/content/init/"):
            return self._tiktok_init(handler, token, path, payload)
        if path == "/v2/post/publish/status/fetch/":
            return self._tiktok_status(handler, str(payload.get("publish_id") or ""))
        self._tiktok_answer(handler, 404, {}, "invalid_params", "Unknown endpoint.")

    def _tiktok_init(self, handler, token: str, path: str, payload: dict) -> None:
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.state.tiktok_inits[token] if now - t < 60]
            self.state.tiktok_inits[token] = recent
            if len(recent) >= TIKTOK_INITS_PER_MINUTE:
                limited = True
            else:
                limited = False
                recent.append(now)
        if limited:
            return self._tiktok_answer(
                handler, 429, {}, "rate_limit_exceeded", "API rate limit exceeded: 6 requests per minute."
            )
        post_info = payload.get("post_info") or {}
        source = payload.get("source_info") or {}
        if post_info.get("privacy_level") not in self.state.privacy_level_options:
            return self._tiktok_answer(
                handler, 400, {}, "privacy_level_option_mismatch", "privacy_level is not among the creator's options."
            )
        publish_id = f"v_pub_{'url' if source.get('source') == 'PULL_FROM_URL' else 'file'}~v2.{secrets.token_hex(6)}"
        data: dict = {"publish_id": publish_id}
        if path.endswith("/content/init/"):
            images = source.get("photo_images") or []
            if payload.get("media_type") != "PHOTO" or not images or source.get("source") != "PULL_FROM_URL":
                return self._tiktok_answer(handler, 400, {}, "invalid_params", "photo_images are required.")
            if any(not self._verified(url) for url in images):
                return self._tiktok_answer(
                    handler, 403, {}, "url_ownership_unverified", "The URL's domain is not verified."
                )
        elif source.get("source") == "PULL_FROM_URL":
            if not self._verified(str(source.get("video_url") or "")):
                return self._tiktok_answer(
                    handler, 403, {}, "url_ownership_unverified", "The URL's domain is not verified."
                )
        elif source.get("source") == "FILE_UPLOAD":
            problem = _chunk_rule_problem(source)
            if problem:
                return self._tiktok_answer(handler, 400, {}, "invalid_params", problem)
            with self.lock:
                self.state.uploads[publish_id] = Upload(
                    source["video_size"], source["chunk_size"], source["total_chunk_count"]
                )
            data["upload_url"] = f"{self.base_url}/tiktok/upload/{publish_id}"
        else:
            return self._tiktok_answer(handler, 400, {}, "invalid_params", "source_info.source is not valid.")
        with self.lock:
            self.state.tiktok_publishes[publish_id] = {
                "post_info": post_info, "source_info": source, "polls": 0, "path": path,
            }  # fmt: skip
        self._tiktok_answer(handler, 200, data)

    def _verified(self, url: str) -> bool:
        return any(url.startswith(prefix) for prefix in self.state.verified_prefixes)

    def _tiktok_chunk(self, handler, publish_id: str, body: bytes, record: dict) -> None:
        upload = self.state.uploads.get(publish_id)
        match = CONTENT_RANGE.match(record["headers"].get("content-range", ""))
        if upload is None or match is None:
            return _json(handler, 400, {"error": "bad upload"})
        first, last, total = (int(group) for group in match.groups())
        index = first // upload.chunk_size
        expected_last = (
            upload.video_size - 1 if index == upload.total_chunk_count - 1 else first + upload.chunk_size - 1
        )
        if (
            total != upload.video_size
            or first % upload.chunk_size
            or last != expected_last
            or len(body) != (last - first + 1)
        ):
            return _json(handler, 416, {"error": "Content-Range does not match the declared chunks"})
        with self.lock:
            upload.received[index] = body
        handler.send_response(201 if upload.complete else 206)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _tiktok_status(self, handler, publish_id: str) -> None:
        with self.lock:
            publish = self.state.tiktok_publishes.get(publish_id)
            if publish is None:
                status = None
            else:
                upload = self.state.uploads.get(publish_id)
                publish["polls"] += 1
                if upload is not None and not upload.complete:
                    status = "PROCESSING_UPLOAD"
                elif publish["polls"] <= self.state.processing_polls:
                    status = "PROCESSING_DOWNLOAD"
                else:
                    status = "FAILED" if self.state.tiktok_fail_reason else "PUBLISH_COMPLETE"
        if status is None:
            return self._tiktok_answer(handler, 400, {}, "invalid_publish_id", "publish_id does not exist.")
        data: dict = {"status": status}
        if status == "PUBLISH_COMPLETE":
            public = publish["post_info"].get("privacy_level") == "PUBLIC_TO_EVERYONE"
            data["publicaly_available_post_id"] = [7312345678901234567] if public else []
        if status == "FAILED":
            data["fail_reason"] = self.state.tiktok_fail_reason
        self._tiktok_answer(handler, 200, data)

    # --- Instagram ---------------------------------------------------------------------------

    def _graph_error(self, handler, status: int, message: str, code: int, subcode: int | None = None,
                     kind: str = "OAuthException") -> None:  # fmt: skip
        error = {"message": message, "type": kind, "code": code, "fbtrace_id": _log_id()}
        if subcode is not None:
            error["error_subcode"] = subcode
        _json(handler, status, {"error": error})

    def _instagram(self, handler, method: str, path: str, record: dict) -> None:
        if self._bearer(record, "instagram") is None:
            return self._graph_error(handler, 401, "Error validating access token: The session has been invalidated.",
                                     190, 460)  # fmt: skip
        parts = path.strip("/").split("/")[2:]  # after "instagram/<version>"
        params = record["query"]
        if method == "POST":
            params = dict(parse_qsl(record["body"].decode()))
        if method == "GET" and len(parts) == 2 and parts[1] == "content_publishing_limit":
            return _json(handler, 200, {"data": [{
                "quota_usage": self.state.publishing_quota, "config": {"quota_total": 100, "quota_duration": 86400},
            }]})  # fmt: skip
        if method == "POST" and len(parts) == 2 and parts[1] == "media":
            return self._instagram_container(handler, parts[0], params)
        if method == "POST" and len(parts) == 2 and parts[1] == "media_publish":
            return self._instagram_publish(handler, parts[0], params.get("creation_id", ""))
        if method == "GET" and len(parts) == 1:
            return self._instagram_object(handler, parts[0], params.get("fields", ""))
        self._graph_error(handler, 400, "Unsupported request.", 100, kind="GraphMethodException")

    def _instagram_container(self, handler, user_id: str, params: dict) -> None:
        kind = params.get("media_type", "IMAGE")
        if kind == "CAROUSEL":
            children = [c for c in params.get("children", "").split(",") if c]
            if not 2 <= len(children) <= 10 or any(c not in self.state.containers for c in children):
                return self._graph_error(handler, 400, "Invalid children.", 100, kind="OAuthException")
        elif kind == "REELS":
            if not params.get("video_url"):
                return self._graph_error(handler, 400, "The parameter video_url is required.", 100)
        elif not params.get("image_url"):
            return self._graph_error(handler, 400, "The parameter image_url is required.", 100)
        if len(params.get("caption", "")) > 2200:
            return self._graph_error(handler, 400, "The caption is too long.", 100, 2207009)
        container_id = str(17_900_000_000_000_000 + len(self.state.containers) + 1)
        with self.lock:
            self.state.containers[container_id] = {"user_id": user_id, "params": params, "polls": 0,
                                                   "published": None}  # fmt: skip
        _json(handler, 200, {"id": container_id})

    def _instagram_publish(self, handler, user_id: str, creation_id: str) -> None:
        with self.lock:
            container = self.state.containers.get(creation_id)
            if container is None or container["user_id"] != user_id:
                outcome = "missing"
            elif container["published"]:
                outcome = "used"
            elif container["polls"] <= self.state.processing_polls:
                outcome = "not_ready"
            else:
                media_id = str(18_000_000_000_000_000 + len(self.state.media) + 1)
                container["published"] = media_id
                self.state.media[media_id] = {"container": creation_id, "user_id": user_id}
                outcome = media_id
        if outcome == "missing":
            return self._graph_error(handler, 400, "Unsupported post request.", 100, 33, "GraphMethodException")
        if outcome == "used":
            return self._graph_error(handler, 400, "The media has already been published.", 9004, 2207008)
        if outcome == "not_ready":
            return self._graph_error(handler, 400, "Media ID is not available", 9007, 2207027)
        _json(handler, 200, {"id": outcome})

    def _instagram_object(self, handler, object_id: str, fields: str) -> None:
        with self.lock:
            container = self.state.containers.get(object_id)
            if container is not None:
                container["polls"] += 1
                if container["published"]:
                    code = "PUBLISHED"
                elif self.state.instagram_final:
                    code = self.state.instagram_final
                elif container["polls"] <= self.state.processing_polls:
                    code = "IN_PROGRESS"
                else:
                    code = "FINISHED"
        if container is not None:
            return _json(handler, 200, {"status_code": code, "status": f"{code}: fake", "id": object_id})
        if object_id in self.state.media and "permalink" in fields:
            return _json(handler, 200, {"permalink": f"https://www.instagram.com/p/FAKE{object_id[-6:]}/",
                                        "id": object_id})  # fmt: skip
        self._graph_error(handler, 400, f"Unsupported get request. Object with ID '{object_id}' does not exist.",
                          100, 33, "GraphMethodException")  # fmt: skip

    # --- Reddit ------------------------------------------------------------------------------

    def _reddit(self, handler, body: bytes, record: dict) -> None:
        if self._bearer(record, "reddit") is None:
            return _json(handler, 401, {"message": "Unauthorized", "error": 401})
        if not record["headers"].get("user-agent"):
            return _json(handler, 429, {"message": "Too Many Requests", "error": 429})
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        errors = []
        if form.get("api_type") != "json":
            return _json(handler, 200, {"jquery": []})
        if not form.get("sr"):
            errors.append(["SUBREDDIT_REQUIRED", "you must specify a subreddit", "sr"])
        elif form["sr"].lower() == "doesnotexist":
            errors.append(["SUBREDDIT_NOEXIST", "that community doesn't exist", "sr"])
        if not form.get("title"):
            errors.append(["NO_TEXT", "we need something here", "title"])
        elif len(form["title"]) > 300:
            errors.append(["TOO_LONG", "this is too long (max: 300)", "title"])
        if form.get("kind") == "link" and not form.get("url"):
            errors.append(["NO_URL", "a url is required", "url"])
        if form.get("kind") not in ("link", "self"):
            errors.append(["INVALID_OPTION", "that option is not valid", "kind"])
        if errors:
            return _json(handler, 200, {"json": {"errors": errors}})
        post_id = secrets.token_hex(3)
        slug = re.sub(r"[^a-z0-9]+", "_", form["title"].lower())[:40].strip("_")
        with self.lock:
            self.state.reddit_posts.append(form)
        _json(handler, 200, {"json": {"errors": [], "data": {
            "url": self.state.reddit_post_url or f"https://www.reddit.com/r/{form['sr']}/comments/{post_id}/{slug}/",
            "drafts_count": 0, "id": post_id, "name": f"t3_{post_id}",
        }}})  # fmt: skip


def _chunk_rule_problem(source: dict) -> str:
    """TikTok's FILE_UPLOAD rule, or "" when the declared chunks follow it."""
    try:
        size, chunk, count = int(source["video_size"]), int(source["chunk_size"]), int(source["total_chunk_count"])
    except (KeyError, TypeError, ValueError):
        return "video_size, chunk_size and total_chunk_count are required."
    if size < 5 * MB:
        return "" if chunk == size and count == 1 else "Videos under 5 MB are uploaded whole, in one chunk."
    if not 5 * MB <= chunk <= 64 * MB:
        return "chunk_size must be between 5 MB and 64 MB."
    if count != size // chunk or size - chunk * (count - 1) > 128 * MB:
        return "total_chunk_count must be video_size / chunk_size rounded down."
    return ""


def _log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


def _json(handler, status: int, payload: object, headers: dict | None = None) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, str(value))
    handler.end_headers()
    handler.wfile.write(data)
