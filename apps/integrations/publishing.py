"""Publishing: posts scheduled to TikTok, Instagram and Reddit, and the clients that publish them.

A ScheduledPost goes ``scheduled`` → ``publishing`` → ``published`` (or ``failed``; a member may
cancel it while it is still scheduled, and retry it once failed). A post may start as a ``draft``
awaiting approval (``post_draft``: the weekly content plan proposes its week that way); the worker
never looks at drafts, and approving one (``post_schedule`` with ``draft``, after the member adds
the media) makes it scheduled under the rules below. The worker's step, in order:

1. **claim** with a conditional UPDATE (``status=scheduled`` and due → ``publishing``,
   attempts + 1, a lease in ``next_attempt_at``): two workers never publish one post twice;
2. **start** on the platform (TikTok: ``creator_info/query`` then a video or photo init, after
   the per-token limit of 6 inits a minute held in ``apps.core.shared``; Instagram: the 24-hour
   ``content_publishing_limit``, then the media container(s); Reddit: ``/api/submit``, which
   publishes at once);
3. **poll** while the platform processes it (TikTok ``status/fetch``; Instagram the container's
   ``status_code``, then ``media_publish``), every ``INTEGRATIONS_PUBLISH_POLL_SECONDS``;
4. **record** the platform's answer on the post, whatever it was. A start the platform accepted
   without the id to poll (TikTok's ``publish_id``, Instagram's container id) fails at once,
   saying so: the platform may have the post, so it is not sent again.

A post on a SIMULATED connection (the labelled demo, apps/integrations/demo.py) is recorded as
published with a simulated answer; nothing is sent.

Errors are ``PublishError``: *retryable* (network, 5xx, 429 and the platforms' rate limits:
the post goes back to scheduled with a backoff that honours Retry-After, up to
``INTEGRATIONS_PUBLISH_MAX_ATTEMPTS``), *permanent* (the platform refused the content: failed, with
its message), or *reconnect* (the token was revoked: failed, and the connection is marked needs
reconnect and the owners are told). A worker that dies after sending but before recording leaves
the post ``publishing`` with an expired lease; the sweep marks it failed "outcome unknown" rather
than risk a second post: a member checks the platform and presses Retry.

Rules the database cannot state (``post_schedule``): the time is in the future; the creator's
connection to the platform is connected and was granted the publishing scope; the caption fits
the platform; TikTok and Instagram need media; media are https URLs.

Media are public https URLs (the project keeps no media files). TikTok pulls a video from a URL
only on a domain verified with TikTok (``TIKTOK_PULL_FROM_URL_PREFIXES``); any other video is
downloaded here and sent with ``FILE_UPLOAD`` in chunks. Not here: Reddit image uploads (a media
URL becomes a link post), TikTok drafts (``video.upload`` inbox), Instagram stories.

Written on ``requests`` (already used by authlib for the OAuth side) rather than a platform SDK:
there is no maintained Python SDK for TikTok's Content Posting API, and Instagram's and Reddit's
(PRAW) bring their own retry and rate-limit loops that would fight the worker's.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Creator, Membership, Role
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_list, member_list
from apps.ai import egress
from apps.core.errors import ApplicationError, ConflictError
from apps.core.shared import LimitCheck, shared_state
from apps.core.timezones import moment_check
from apps.integrations.models import (
    PUBLISH_PLATFORMS,
    Connection,
    ConnectionStatus,
    Platform,
    PostMediaType,
    PostStatus,
    ScheduledPost,
)
from apps.notifications.models import Notification
from apps.notifications.services import notification_send

logger = logging.getLogger(__name__)

# The scope each platform must have granted for a post to go out.
PUBLISH_SCOPES = {
    Platform.TIKTOK: "video.publish",
    Platform.INSTAGRAM: "instagram_business_content_publish",
    Platform.REDDIT: "submit",
}
# What the id a platform answers a started post with is called, to follow it until published.
PUBLISH_ID_NAMES = {Platform.TIKTOK: "publish_id", Platform.INSTAGRAM: "media container id", Platform.REDDIT: "id"}
CAPTION_LIMITS = {Platform.TIKTOK: 2200, Platform.INSTAGRAM: 2200, Platform.REDDIT: 40000}
TIKTOK_PHOTO_TITLE_LIMIT = 90
TIKTOK_PHOTO_DESCRIPTION_LIMIT = 4000
TIKTOK_MAX_PHOTOS = 35
INSTAGRAM_MAX_HASHTAGS = 30
INSTAGRAM_MAX_CAROUSEL = 10
REDDIT_TITLE_LIMIT = 300
MAX_MEDIA = 35
MAX_AHEAD = timedelta(days=366)
SUBREDDIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
# TikTok: 6 inits a minute per access token. GCRA admits at most limit + burst in any window, so
# 3 a minute with a burst of 3: up to three at once, never a seventh within a minute.
TIKTOK_INIT_LIMIT = (3, 60.0, 3)
TIKTOK_MIN_CHUNK = 5 * 1024 * 1024
TIKTOK_MAX_CHUNK = 64 * 1024 * 1024
# Reddit: "you are doing that too much. try again in 5 minutes."
REDDIT_RATELIMIT_RE = re.compile(r"(\d+)\s+(second|minute|hour)", re.IGNORECASE)


class PublishError(ApplicationError):
    """A platform did not take the post. ``retryable``: try again later (after ``retry_after``
    seconds when the platform said); ``reconnect``: the token is no good any more."""

    status_code = 502
    code = "publish_failed"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        reconnect: bool = False,
        retry_after: float | None = None,
        response: str = "",
    ):
        super().__init__(message)
        self.retryable = retryable and not reconnect
        self.reconnect = reconnect
        self.retry_after = retry_after
        self.response = response


@dataclass
class Outcome:
    """What the platform said: ``published`` (with its post id and URL) or still ``processing``
    (with the id to poll)."""

    state: str
    response: str
    publish_id: str = ""
    post_id: str = ""
    url: str = ""


def _compact(payload: Any, limit: int = 4000) -> str:
    if payload is None:
        return ""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return text[:limit]


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    for header in ("Retry-After", "x-ratelimit-reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def _request(
    session: requests.Session, method: str, url: str, *, label: str, **kwargs
) -> tuple[requests.Response, Any]:
    """One HTTP call; a network failure is a retryable PublishError. Answers the response and its
    JSON body (None when the body is not JSON)."""
    try:
        response = session.request(
            method, url, timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS, allow_redirects=False, **kwargs
        )
    except requests.Timeout:
        raise PublishError(f"{label} did not answer in time.", retryable=True) from None
    except requests.RequestException as error:
        raise PublishError(f"{label} could not be reached ({type(error).__name__}).", retryable=True) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response, body


class Publisher:
    """One platform's client for one connection."""

    label = ""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {connection.access_token}"

    def close(self) -> None:
        self.session.close()

    def start(self, post: ScheduledPost) -> Outcome:
        raise NotImplementedError

    def poll(self, post: ScheduledPost) -> Outcome:
        raise NotImplementedError


# --- TikTok Content Posting API ---------------------------------------------------------------


class TikTokPublisher(Publisher):
    """Direct posts through ``/v2/post/publish/``. Every answer is ``{"data": {...}, "error":
    {"code", "message", "log_id"}}`` with ``code == "ok"`` on success."""

    label = "TikTok"
    RECONNECT = {"access_token_invalid", "scope_not_authorized", "scope_permission_missed"}
    RETRYABLE = {"rate_limit_exceeded", "internal_error"}

    def _url(self, path: str) -> str:
        return settings.TIKTOK_API_URL.rstrip("/") + path

    def _call(self, path: str, payload: dict | None = None) -> tuple[dict, str]:
        response, body = _request(
            self.session, "POST", self._url(path), label=self.label, json=payload or {},
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )  # fmt: skip
        error = (body or {}).get("error") or {} if isinstance(body, dict) else {}
        code = str(error.get("code") or "")
        answer = _compact(body if body is not None else response.text)
        if response.status_code == 200 and code in ("ok", ""):
            return (body or {}).get("data") or {}, answer
        message = str(error.get("message") or f"HTTP {response.status_code}")[:500]
        text = f"TikTok refused ({code or response.status_code}): {message}"
        if code in self.RECONNECT or response.status_code == 401:
            raise PublishError(text, reconnect=True, response=answer)
        if code in self.RETRYABLE or response.status_code == 429 or response.status_code >= 500:
            raise PublishError(text, retryable=True, retry_after=_retry_after(response), response=answer)
        raise PublishError(text, response=answer)

    def _init_allowed(self) -> None:
        limit, window, burst = TIKTOK_INIT_LIMIT
        check = LimitCheck(f"publish:tiktok:init:{self.connection.pk}", limit, window, burst=burst)
        wait = shared_state().hit_limits_sync([check])
        if wait is not None:
            raise PublishError(
                f"TikTok allows 6 post starts a minute per account; trying again in {wait:.0f} s.",
                retryable=True,
                retry_after=wait,
            )

    def _privacy(self, info: dict) -> str:
        options = info.get("privacy_level_options") or []
        preferred = settings.TIKTOK_PRIVACY_LEVEL
        if preferred in options:
            return preferred
        if not options:
            raise PublishError("TikTok offered no privacy level for this account.", response=_compact(info))
        return "SELF_ONLY" if "SELF_ONLY" in options else str(options[0])

    def start(self, post: ScheduledPost) -> Outcome:
        info, _ = self._call("/v2/post/publish/creator_info/query/")
        privacy = self._privacy(info)
        if post.media_type == PostMediaType.VIDEO:
            return self._start_video(post, privacy, info)
        return self._start_photos(post, privacy)

    def _start_video(self, post: ScheduledPost, privacy: str, info: dict) -> Outcome:
        url = post.media_urls[0]
        post_info = {
            "title": post.caption,
            "privacy_level": privacy,
            "disable_comment": bool(info.get("comment_disabled")),
            "disable_duet": bool(info.get("duet_disabled")),
            "disable_stitch": bool(info.get("stitch_disabled")),
        }
        if any(url.startswith(prefix) for prefix in settings.TIKTOK_PULL_FROM_URL_PREFIXES):
            self._init_allowed()
            data, answer = self._call(
                "/v2/post/publish/video/init/",
                {"post_info": post_info, "source_info": {"source": "PULL_FROM_URL", "video_url": url}},
            )
            return Outcome("processing", answer, publish_id=str(data.get("publish_id") or ""))
        with tempfile.TemporaryFile() as video:
            size = _download(url, video)
            chunk_size, chunks = tiktok_chunks(size, settings.TIKTOK_UPLOAD_CHUNK_BYTES)
            self._init_allowed()
            data, answer = self._call(
                "/v2/post/publish/video/init/",
                {
                    "post_info": post_info,
                    "source_info": {
                        "source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk_size,
                        "total_chunk_count": chunks,
                    },
                },
            )  # fmt: skip
            publish_id = str(data.get("publish_id") or "")
            upload_url = str(data.get("upload_url") or "")
            if not upload_url:
                raise PublishError("TikTok answered the upload without an upload URL.", response=answer)
            self._upload(upload_url, video, size, chunk_size, chunks)
        return Outcome("processing", answer, publish_id=publish_id)

    def _upload(self, upload_url: str, video: IO[bytes], size: int, chunk_size: int, chunks: int) -> None:
        """PUT each chunk with its Content-Range; the last chunk takes the remainder."""
        video.seek(0)
        for index in range(chunks):
            first = index * chunk_size
            last = size - 1 if index == chunks - 1 else first + chunk_size - 1
            data = video.read(last - first + 1)
            try:
                response = requests.put(
                    upload_url, data=data, timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS * 4,
                    headers={"Content-Type": "video/mp4", "Content-Length": str(len(data)),
                             "Content-Range": f"bytes {first}-{last}/{size}"},
                )  # fmt: skip
            except requests.RequestException as error:
                raise PublishError(f"The upload to TikTok broke ({type(error).__name__}).", retryable=True) from None
            if response.status_code not in (200, 201, 206):
                raise PublishError(
                    f"TikTok refused chunk {index + 1} of {chunks} (HTTP {response.status_code}).",
                    retryable=response.status_code >= 500 or response.status_code == 429,
                    response=_compact(response.text),
                )

    def _start_photos(self, post: ScheduledPost, privacy: str) -> Outcome:
        self._init_allowed()
        data, answer = self._call(
            "/v2/post/publish/content/init/",
            {
                "post_info": {
                    "title": post.title, "description": post.caption, "privacy_level": privacy,
                    "disable_comment": False, "auto_add_music": True,
                },
                "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": post.media_urls},
                "post_mode": "DIRECT_POST",
                "media_type": "PHOTO",
            },
        )  # fmt: skip
        return Outcome("processing", answer, publish_id=str(data.get("publish_id") or ""))

    def poll(self, post: ScheduledPost) -> Outcome:
        data, answer = self._call("/v2/post/publish/status/fetch/", {"publish_id": post.publish_id})
        status = data.get("status")
        if status == "PUBLISH_COMPLETE":
            # Only public posts get a public id; a private one is known by its publish id.
            ids = data.get("publicaly_available_post_id") or []
            post_id = str(ids[0]) if ids else post.publish_id
            return Outcome("published", answer, post_id=post_id)
        if status == "FAILED":
            raise PublishError(f"TikTok could not publish it: {data.get('fail_reason') or 'no reason given'}.",
                               response=answer)  # fmt: skip
        return Outcome("processing", answer, publish_id=post.publish_id)


def tiktok_chunks(size: int, preferred: int) -> tuple[int, int]:
    """TikTok's chunking rule: under 5 MB one chunk of the whole file; otherwise chunks of 5 to 64 MB,
    ``floor(size / chunk)`` of them, the last taking the remainder (up to 128 MB)."""
    if size <= 0:
        raise PublishError("The video is empty.")
    if size < TIKTOK_MIN_CHUNK:
        return size, 1
    chunk = min(max(preferred, TIKTOK_MIN_CHUNK), TIKTOK_MAX_CHUNK, size)
    return chunk, max(1, size // chunk)


def _private_media_allowed() -> bool:
    return bool(settings.INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA)


def _download(url: str, into: IO[bytes]) -> int:
    """Stream a media URL into a file (capped at INTEGRATIONS_PUBLISH_MAX_VIDEO_BYTES); answers
    its size. Sent without the platform's token, to public addresses only (apps/ai/egress.py's
    rule: a member's URL must not reach the server's private network), following no redirect.
    The host name is resolved once, by the connection, which connects only to the addresses it
    checked (``egress.guarded_session``): a DNS answer changed after a check reaches nothing."""
    limit = settings.INTEGRATIONS_PUBLISH_MAX_VIDEO_BYTES
    try:
        egress.check_url(url, allow_private=_private_media_allowed(), resolve=False)
        with (
            egress.guarded_session(egress.policy_check(_private_media_allowed)) as session,
            session.get(
                url, stream=True, timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS, allow_redirects=False
            ) as response,
        ):
            if response.status_code >= 500:
                raise PublishError(f"The video's server answered HTTP {response.status_code}.", retryable=True)
            if response.status_code != 200:
                raise PublishError(f"The video could not be fetched (HTTP {response.status_code}).")
            size = 0
            for chunk in response.iter_content(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise PublishError(f"The video is larger than {limit // (1024 * 1024)} MB.")
                into.write(chunk)
    except egress.RefusedURL as refusal:
        raise PublishError(f"The video's address is not allowed: {refusal.message}") from None
    except requests.RequestException as error:
        raise PublishError(f"The video could not be fetched ({type(error).__name__}).", retryable=True) from None
    return size


# --- Instagram Graph API (Instagram business login) ------------------------------------------


class InstagramPublisher(Publisher):
    """Containers, then ``media_publish``. Errors: ``{"error": {"message", "type", "code",
    "error_subcode", "is_transient", "fbtrace_id"}}``."""

    label = "Instagram"
    RATE_LIMIT_CODES = {4, 17, 32, 613}
    TRANSIENT_CODES = {1, 2}
    NOT_READY_SUBCODES = {2207027}

    @property
    def user_id(self) -> str:
        if not self.connection.external_account_id:
            raise PublishError("The Instagram connection has no account id; reconnect it.", reconnect=True)
        return self.connection.external_account_id

    def _call(self, method: str, path: str, **kwargs) -> tuple[dict, str]:
        url = f"{settings.INSTAGRAM_GRAPH_URL.rstrip('/')}/{settings.INSTAGRAM_GRAPH_VERSION}{path}"
        response, body = _request(self.session, method, url, label=self.label, **kwargs)
        answer = _compact(body if body is not None else response.text)
        if response.status_code == 200 and isinstance(body, dict) and "error" not in body:
            return body, answer
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        code = error.get("code")
        text = f"Instagram refused ({code or response.status_code}): {str(error.get('message') or '')[:500]}"
        if code == 190 or response.status_code == 401:
            raise PublishError(text, reconnect=True, response=answer)
        if (
            code in self.RATE_LIMIT_CODES
            or code in self.TRANSIENT_CODES
            or error.get("is_transient")
            or error.get("error_subcode") in self.NOT_READY_SUBCODES
            or response.status_code == 429
            or response.status_code >= 500
        ):
            raise PublishError(text, retryable=True, retry_after=_retry_after(response), response=answer)
        raise PublishError(text, response=answer)

    def start(self, post: ScheduledPost) -> Outcome:
        limit, _ = self._call(
            "GET", f"/{self.user_id}/content_publishing_limit", params={"fields": "quota_usage,config"}
        )
        usage = (limit.get("data") or [{}])[0]
        total = (usage.get("config") or {}).get("quota_total")
        if total is not None and int(usage.get("quota_usage") or 0) >= int(total):
            raise PublishError(
                f"Instagram's publishing limit is used up ({usage.get('quota_usage')} of {total} in 24 hours).",
                retryable=True, retry_after=3600, response=_compact(limit),
            )  # fmt: skip
        if post.media_type == PostMediaType.VIDEO:
            fields = {"media_type": "REELS", "video_url": post.media_urls[0], "caption": post.caption}
        elif len(post.media_urls) == 1:
            fields = {"image_url": post.media_urls[0], "caption": post.caption}
        else:
            children = []
            for url in post.media_urls:
                child, _ = self._call(
                    "POST", f"/{self.user_id}/media", data={"image_url": url, "is_carousel_item": "true"}
                )
                children.append(str(child["id"]))
            fields = {"media_type": "CAROUSEL", "children": ",".join(children), "caption": post.caption}
        container, answer = self._call("POST", f"/{self.user_id}/media", data=fields)
        return Outcome("processing", answer, publish_id=str(container.get("id") or ""))

    def poll(self, post: ScheduledPost) -> Outcome:
        status, answer = self._call("GET", f"/{post.publish_id}", params={"fields": "status_code,status"})
        code = status.get("status_code")
        if code == "IN_PROGRESS":
            return Outcome("processing", answer, publish_id=post.publish_id)
        if code in ("ERROR", "EXPIRED"):
            raise PublishError(f"Instagram could not process the media: {status.get('status') or code}.",
                               response=answer)  # fmt: skip
        if code == "PUBLISHED":  # published by an earlier step whose answer was lost
            return Outcome("published", answer, post_id=post.publish_id)
        published, answer = self._call("POST", f"/{self.user_id}/media_publish", data={"creation_id": post.publish_id})
        media_id = str(published.get("id") or "")
        url = ""
        try:
            media, _ = self._call("GET", f"/{media_id}", params={"fields": "permalink"})
            url = str(media.get("permalink") or "")[:500]
        except PublishError:
            pass  # the post is out; only its link is missing
        return Outcome("published", answer, post_id=media_id, url=url)


# --- Reddit ------------------------------------------------------------------------------------


class RedditPublisher(Publisher):
    """``POST /api/submit`` on oauth.reddit.com, form-encoded, ``api_type=json``: answers
    ``{"json": {"errors": [[code, message, field]], "data": {"url", "id", "name"}}}``."""

    label = "Reddit"

    def __init__(self, connection: Connection):
        super().__init__(connection)
        self.session.headers["Authorization"] = f"bearer {connection.access_token}"
        self.session.headers["User-Agent"] = settings.REDDIT_USER_AGENT

    def start(self, post: ScheduledPost) -> Outcome:
        form = {"sr": post.subreddit, "title": post.title, "api_type": "json", "resubmit": "true",
                "sendreplies": "true"}  # fmt: skip
        if post.media_urls:
            form.update(kind="link", url=post.media_urls[0])
        else:
            form.update(kind="self", text=post.caption)
        url = settings.REDDIT_API_URL.rstrip("/") + "/api/submit"
        response, body = _request(self.session, "POST", url, label=self.label, data=form)
        answer = _compact(body if body is not None else response.text)
        if response.status_code == 401:
            raise PublishError("Reddit refused the sign-in (401).", reconnect=True, response=answer)
        if response.status_code == 429 or response.status_code >= 500:
            raise PublishError(f"Reddit is unavailable (HTTP {response.status_code}).", retryable=True,
                               retry_after=_retry_after(response), response=answer)  # fmt: skip
        if response.status_code != 200 or not isinstance(body, dict):
            raise PublishError(f"Reddit refused the post (HTTP {response.status_code}).", response=answer)
        result = body.get("json") or {}
        errors = result.get("errors") or []
        if errors:
            code, message = [*list(errors[0]), "", ""][:2]
            text = f"Reddit refused ({code}): {message}"
            if code == "RATELIMIT":
                raise PublishError(text, retryable=True, retry_after=_reddit_wait(str(message)), response=answer)
            raise PublishError(text, response=answer)
        data = result.get("data") or {}
        post_id = str(data.get("name") or data.get("id") or "")
        if not post_id:
            raise PublishError("Reddit answered without a post id.", response=answer)
        return Outcome("published", answer, post_id=post_id, url=str(data.get("url") or "")[:500])

    def poll(self, post: ScheduledPost) -> Outcome:  # Reddit publishes at once
        return Outcome("published", post.last_response, post_id=post.platform_post_id, url=post.platform_url)


def _reddit_wait(message: str) -> float | None:
    match = REDDIT_RATELIMIT_RE.search(message)
    if not match:
        return None
    unit = {"second": 1, "minute": 60, "hour": 3600}[match.group(2).lower()]
    return float(match.group(1)) * unit


PUBLISHERS: dict[str, type[Publisher]] = {
    Platform.TIKTOK: TikTokPublisher,
    Platform.INSTAGRAM: InstagramPublisher,
    Platform.REDDIT: RedditPublisher,
}


# --- Reads ---------------------------------------------------------------------------------------


def post_list(
    *,
    membership: Membership,
    creator_id: int | None = None,
    platform: str | None = None,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[ScheduledPost]:
    """The posts of the creators this member may see, filtered, oldest first."""
    posts = (
        ScheduledPost.objects.for_agency(membership.agency_id)
        .filter(creator__in=creator_list(membership=membership, include_archived=True).values("pk"))
        .select_related("creator")
    )
    if creator_id is not None:
        posts = posts.filter(creator_id=creator_id)
    if platform:
        posts = posts.filter(platform=platform)
    if status:
        posts = posts.filter(status=status)
    if start is not None:
        posts = posts.filter(scheduled_at__gte=start)
    if end is not None:
        posts = posts.filter(scheduled_at__lt=end)
    return posts.order_by("scheduled_at", "id")


def post_get_for_member(*, membership: Membership, post_id: int) -> ScheduledPost:
    post = post_list(membership=membership).filter(pk=post_id).first()
    if post is None:
        raise Http404("No such post.")
    return post


def _link(url: str) -> str:
    """The platform's link to a published post, kept only as an https:// address: the pages
    render it as a link, and a platform (or anything posing as one) must not put a javascript:
    or data: URL there."""
    url = (url or "").strip()[:500]
    return url if url.lower().startswith("https://") else ""


# --- Writes --------------------------------------------------------------------------------------


def _validate(
    *, platform: str, caption: str, title: str, subreddit: str, media_type: str, media_urls: list[str]
) -> None:
    label = dict(Platform.choices).get(platform, platform)
    if len(caption) > CAPTION_LIMITS[platform]:
        raise ApplicationError(f"{label} captions are at most {CAPTION_LIMITS[platform]} characters.", field="caption")
    if len(media_urls) > MAX_MEDIA:
        raise ApplicationError(f"At most {MAX_MEDIA} media per post.", field="media_urls")
    for url in media_urls:
        secure = url.startswith("https://") or (
            settings.INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA and url.startswith("http://")
        )
        if not secure or len(url) > 2000 or any(c.isspace() for c in url):
            raise ApplicationError("Each media reference must be an https:// address.", field="media_urls")
    if platform in (Platform.TIKTOK, Platform.INSTAGRAM):
        if media_type == PostMediaType.TEXT or not media_urls:
            raise ApplicationError(f"{label} posts need a video or photos.", field="media_urls")
        if media_type == PostMediaType.VIDEO and len(media_urls) != 1:
            raise ApplicationError("A video post takes exactly one video.", field="media_urls")
    if platform == Platform.TIKTOK and media_type == PostMediaType.PHOTO:
        if len(media_urls) > TIKTOK_MAX_PHOTOS:
            raise ApplicationError(f"TikTok photo posts take at most {TIKTOK_MAX_PHOTOS} photos.", field="media_urls")
        if len(title) > TIKTOK_PHOTO_TITLE_LIMIT:
            raise ApplicationError(
                f"TikTok photo titles are at most {TIKTOK_PHOTO_TITLE_LIMIT} characters.", field="title"
            )
    if platform == Platform.INSTAGRAM:
        if media_type == PostMediaType.PHOTO and len(media_urls) > INSTAGRAM_MAX_CAROUSEL:
            raise ApplicationError(
                f"Instagram carousels take at most {INSTAGRAM_MAX_CAROUSEL} photos.", field="media_urls"
            )
        if caption.count("#") > INSTAGRAM_MAX_HASHTAGS:
            raise ApplicationError(f"Instagram allows at most {INSTAGRAM_MAX_HASHTAGS} hashtags.", field="caption")
    if platform == Platform.REDDIT:
        if not title.strip():
            raise ApplicationError("Reddit posts need a title.", field="title")
        if len(title) > REDDIT_TITLE_LIMIT:
            raise ApplicationError(f"Reddit titles are at most {REDDIT_TITLE_LIMIT} characters.", field="title")
        if not SUBREDDIT_RE.match(subreddit):
            raise ApplicationError("Name the subreddit, e.g. OnlyFansPromotions (without r/).", field="subreddit")
        if media_type == PostMediaType.VIDEO and len(media_urls) != 1:
            raise ApplicationError("A link post takes exactly one media address.", field="media_urls")


def _check_platform_and_moment(platform: str, scheduled_at: datetime) -> None:
    if platform not in PUBLISH_PLATFORMS:
        raise ApplicationError("Posts are published to TikTok, Instagram or Reddit.", field="platform")
    if timezone.is_naive(scheduled_at):
        raise ApplicationError("Give the time with its time zone.", field="scheduled_at")
    moment_check(scheduled_at, field="scheduled_at")


def post_schedule(
    *,
    membership: Membership,
    creator: Creator,
    platform: str,
    scheduled_at: datetime,
    caption: str = "",
    title: str = "",
    subreddit: str = "",
    media_type: str = PostMediaType.TEXT,
    media_urls: list[str] | None = None,
    generation_id: int | None = None,
    draft: ScheduledPost | None = None,
) -> ScheduledPost:
    """Schedule a post on the creator's connection to ``platform``; it goes out at
    ``scheduled_at`` (queued now when that is within the hour, by the minute's sweep otherwise).

    With ``draft`` (a post awaiting approval, see ``post_draft``), approving it: the draft itself
    becomes the scheduled post, with what the member gave, once and only while it is a draft."""
    require(membership, Perm.EDIT, creator)
    if draft is not None and (draft.agency_id != membership.agency_id or draft.creator_id != creator.pk):
        raise ApplicationError("A draft is approved for its own creator.", field="creator")
    if creator.is_archived:  # the pages offer active creators only; a draft's approval comes here too
        raise ApplicationError(f"{creator.display_name} is archived: restore the creator first.")
    _check_platform_and_moment(platform, scheduled_at)
    if media_type not in PostMediaType.values:
        raise ApplicationError("Choose video, photos or text.", field="media_type")
    media_urls = [url.strip() for url in (media_urls or []) if url.strip()]
    caption, title, subreddit = caption.strip(), title.strip(), subreddit.strip().removeprefix("r/")
    if media_type == PostMediaType.TEXT and media_urls and platform == Platform.REDDIT:
        media_type = PostMediaType.PHOTO  # a link post
    if scheduled_at <= timezone.now():
        raise ApplicationError("Choose a time in the future.", field="scheduled_at")
    if scheduled_at > timezone.now() + MAX_AHEAD:
        raise ApplicationError("Choose a time within the next year.", field="scheduled_at")
    label = dict(Platform.choices)[platform]
    connection = Connection.objects.for_agency(membership.agency_id).filter(creator=creator, platform=platform).first()
    if connection is not None and connection.is_simulated:
        raise ApplicationError(
            f"{creator.display_name}'s {label} connection is the simulated demo one, which publishes nothing: "
            "connect the real account on the integrations page first.",
            field="platform",
        )
    if connection is None or connection.status != ConnectionStatus.CONNECTED:
        raise ApplicationError(
            f"{creator.display_name} is not connected to {label}: connect it on the integrations page first.",
            field="platform",
        )
    if PUBLISH_SCOPES[platform] not in (connection.scopes or []):
        raise ApplicationError(
            f"{label} did not grant publishing ({PUBLISH_SCOPES[platform]}) to this connection: reconnect it.",
            field="platform",
        )
    _validate(platform=platform, caption=caption, title=title, subreddit=subreddit, media_type=media_type,
              media_urls=media_urls)  # fmt: skip
    fields = dict(
        connection=connection, platform=platform, title=title, caption=caption, subreddit=subreddit,
        media_type=media_type, media_urls=media_urls, scheduled_at=scheduled_at, next_attempt_at=scheduled_at,
    )  # fmt: skip
    if draft is None:
        post = ScheduledPost.objects.create(
            agency_id=membership.agency_id, creator=creator, generation_id=generation_id,
            created_by_id=membership.user_id, **fields,
        )  # fmt: skip
    else:
        if generation_id is not None:
            fields["generation_id"] = generation_id
        approved = ScheduledPost.objects.filter(pk=draft.pk, status=PostStatus.DRAFT).update(
            status=PostStatus.SCHEDULED, updated_at=timezone.now(), **fields
        )
        post = ScheduledPost.objects.select_related("creator").get(pk=draft.pk)
        if not approved:
            raise ConflictError(f"This post is no longer a draft: it is {post.get_status_display().lower()}.")
    _enqueue(post.pk, at=scheduled_at)
    return post


def caption_with_hashtags(platform: str, caption: str, hashtags: list[str]) -> str:
    """The caption followed by as many of the hashtags, in order, as the platform's caption limit
    (and Instagram's 30 hashtags) leave room for."""
    text = caption.strip()[: CAPTION_LIMITS[platform]]
    room = INSTAGRAM_MAX_HASHTAGS - text.count("#") if platform == Platform.INSTAGRAM else len(hashtags)
    for tag in hashtags[: max(0, room)]:
        if len(text) + 1 + len(tag) > CAPTION_LIMITS[platform]:
            break
        text = f"{text} {tag}"
    return text


def publish_label(platform: str) -> str | None:
    """The platform's name when Huntaze publishes there (TikTok, Instagram, Reddit), else None."""
    return dict(Platform.choices)[platform] if platform in PUBLISH_PLATFORMS else None


def post_draft(
    *,
    membership: Membership,
    creator: Creator,
    platform: str,
    scheduled_at: datetime,
    caption: str = "",
    title: str = "",
    generation_id: int | None = None,
) -> ScheduledPost:
    """A post proposed for ``scheduled_at`` that waits for a member's approval (``post_schedule``
    with ``draft``): nothing is sent before that, and it needs no connection yet. The weekly
    content plan makes these. A generation is drafted once: when a post of it exists already
    (still a draft, or approved, published or discarded since), that post is the answer, so a
    plan step run again brings back nothing a member has dealt with."""
    require(membership, Perm.EDIT, creator)
    _check_platform_and_moment(platform, scheduled_at)
    caption, title = caption.strip(), title.strip()
    label = dict(Platform.choices)[platform]
    if len(caption) > CAPTION_LIMITS[platform]:
        raise ApplicationError(f"{label} captions are at most {CAPTION_LIMITS[platform]} characters.", field="caption")
    if len(title) > REDDIT_TITLE_LIMIT:
        raise ApplicationError(f"Titles are at most {REDDIT_TITLE_LIMIT} characters.", field="title")
    if generation_id is not None:
        existing = (
            ScheduledPost.objects.filter(agency_id=membership.agency_id, generation_id=generation_id)
            .order_by("pk")
            .first()
        )
        if existing is not None:
            return existing
    return ScheduledPost.objects.create(
        agency_id=membership.agency_id, creator=creator, connection=None, platform=platform,
        generation_id=generation_id, caption=caption, title=title, media_type=PostMediaType.TEXT,
        scheduled_at=scheduled_at, status=PostStatus.DRAFT, next_attempt_at=None, created_by_id=membership.user_id,
    )  # fmt: skip


def _enqueue(post_id: int, *, at: datetime | None = None, countdown: float | None = None) -> None:
    """Queue the post's next step for its time, once the transaction commits. A time more than an
    hour away is left to the minute's sweep: brokers redeliver long-delayed messages (Redis's
    visibility timeout), and the sweep needs no message at all."""
    from apps.integrations.tasks import publish_post

    if at is not None and at - timezone.now() > timedelta(hours=1):
        return
    if countdown is not None and countdown > 3600:
        return
    transaction.on_commit(lambda: publish_post.apply_async((post_id,), eta=at, countdown=countdown))


def post_cancel(*, membership: Membership, post: ScheduledPost, seen: str | None = None) -> ScheduledPost:
    """Cancel a scheduled post, or discard a draft. ``seen``: the status the member saw when they
    clicked (a page's Cancel or Discard button): only a post still in it is cancelled, so a draft
    approved meanwhile in another tab is not discarded as it goes out."""
    require(membership, Perm.EDIT, post.creator)
    cancellable = (PostStatus.SCHEDULED, PostStatus.DRAFT)
    changed = ScheduledPost.objects.filter(
        pk=post.pk, status__in=(seen,) if seen in cancellable else cancellable
    ).update(status=PostStatus.CANCELLED, next_attempt_at=None, updated_at=timezone.now())
    post.refresh_from_db()
    if not changed:
        now = post.get_status_display().lower()
        if seen in cancellable and post.status != seen:
            raise ConflictError(f"This post changed meanwhile: it is {now} now, so nothing was cancelled.")
        raise ConflictError(f"Only a scheduled post or a draft can be cancelled; this one is {now}.")
    return post


def post_retry(*, membership: Membership, post: ScheduledPost) -> ScheduledPost:
    """Put a failed post back in the queue, to go out now (or at its time, if still ahead)."""
    require(membership, Perm.EDIT, post.creator)
    if post.status != PostStatus.FAILED:  # a draft has no connection yet: refused before reading one
        raise ConflictError(f"Only a failed post can be retried; this one is {post.get_status_display().lower()}.")
    connection = post.connection
    if connection.status != ConnectionStatus.CONNECTED:
        raise ApplicationError(
            f"The {connection.get_platform_display()} connection is {connection.get_status_display().lower()}: "
            "reconnect it first."
        )
    now = timezone.now()
    at = max(now, post.scheduled_at)
    changed = ScheduledPost.objects.filter(pk=post.pk, status=PostStatus.FAILED).update(
        status=PostStatus.SCHEDULED, next_attempt_at=at, attempts=0, polls=0, publish_id="", last_error="",
        updated_at=now,
    )  # fmt: skip
    post.refresh_from_db()
    if not changed:
        raise ConflictError(f"Only a failed post can be retried; this one is {post.get_status_display().lower()}.")
    _enqueue(post.pk, at=at)
    return post


# --- The worker's step ----------------------------------------------------------------------------


def posts_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of posts whose time (publish, retry, poll or lease end) has come."""
    now = now or timezone.now()
    return list(
        ScheduledPost.objects.filter(status__in=(PostStatus.SCHEDULED, PostStatus.PUBLISHING), next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _backoff(attempts: int, retry_after: float | None) -> float:
    base = settings.INTEGRATIONS_PUBLISH_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1))
    return min(max(base, retry_after or 0.0), 6 * 3600.0)


def post_publish(*, post_id: int) -> str:
    """One step for one post: start it, poll it, or settle an expired lease. Answers what
    happened ("published", "processing", "retry", "failed", "skipped"). Idempotent: each branch
    claims the post with a conditional UPDATE and does nothing when another worker has it."""
    now = timezone.now()
    post = ScheduledPost.objects.select_related("connection", "creator").filter(pk=post_id).first()
    if post is None or post.next_attempt_at is None or post.next_attempt_at > now:
        return "skipped"
    lease = now + timedelta(seconds=settings.INTEGRATIONS_PUBLISH_LEASE_SECONDS)
    due = ScheduledPost.objects.filter(pk=post.pk, next_attempt_at__lte=now)
    if post.status == PostStatus.SCHEDULED:
        if not due.filter(status=PostStatus.SCHEDULED).update(
            status=PostStatus.PUBLISHING, attempts=F("attempts") + 1, next_attempt_at=lease, publish_id="",
            updated_at=now,
        ):  # fmt: skip
            return "skipped"
        polling = False
    elif post.status == PostStatus.PUBLISHING and post.publish_id:
        if not due.filter(status=PostStatus.PUBLISHING, publish_id=post.publish_id).update(
            polls=F("polls") + 1, next_attempt_at=lease, updated_at=now
        ):
            return "skipped"
        polling = True
    elif post.status == PostStatus.PUBLISHING:
        # The lease of a start ran out: a worker died between sending and recording. The platform
        # may have the post; trying again could post it twice.
        changed = due.filter(status=PostStatus.PUBLISHING, publish_id="").update(
            status=PostStatus.FAILED, next_attempt_at=None, updated_at=now,
            last_error="Publishing stopped half-way (the worker was interrupted); the outcome is unknown. "
            "Check the platform before pressing Retry.",
        )  # fmt: skip
        return "failed" if changed else "skipped"
    else:
        return "skipped"
    post.refresh_from_db()
    connection = post.connection
    if connection.is_simulated and connection.status == ConnectionStatus.CONNECTED:
        # The labelled demo connection (apps/integrations/demo.py): nothing leaves the server.
        label = post.get_platform_display()
        answer = {"simulated": True, "note": f"Simulated demo: nothing was sent to {label}."}
        _settle(
            post, PostStatus.PUBLISHED, platform_post_id=f"sim_{post.pk}", last_response=json.dumps(answer),
            last_error="", published_at=timezone.now(), next_attempt_at=None,
        )  # fmt: skip
        return "published"
    if connection.status != ConnectionStatus.CONNECTED or not connection.access_token:
        _settle(post, PostStatus.FAILED, next_attempt_at=None, last_error=f"The {connection.get_platform_display()} "
                f"connection is {connection.get_status_display().lower()}: reconnect it, then retry.")  # fmt: skip
        return "failed"
    publisher = PUBLISHERS[post.platform](connection)
    try:
        outcome = publisher.poll(post) if polling else publisher.start(post)
    except PublishError as error:
        return _failed(post, error, polling=polling)
    finally:
        publisher.close()
    if outcome.state == "published":
        _settle(
            post, PostStatus.PUBLISHED, platform_post_id=outcome.post_id[:128], platform_url=_link(outcome.url),
            last_response=outcome.response, last_error="", published_at=timezone.now(), next_attempt_at=None,
        )  # fmt: skip
        logger.info("integrations.publish.published", extra={"post_id": post.pk, "platform": post.platform})
        return "published"
    publish_id = outcome.publish_id[:128] or post.publish_id
    if not publish_id:
        # Without the id there is nothing to poll; left "publishing", the post would later read as
        # an interrupted worker. Not retried: the platform may have taken it.
        label = post.get_platform_display()
        message = (
            f"{label} accepted the post but its answer had no {PUBLISH_ID_NAMES[post.platform]}, so its "
            f"progress cannot be followed. Check {label} before pressing Retry: the post may be there already."
        )
        _settle(post, PostStatus.FAILED, last_response=outcome.response, next_attempt_at=None, last_error=message)
        logger.warning("integrations.publish.no_publish_id", extra={"post_id": post.pk, "platform": post.platform})
        return "failed"
    if post.polls >= settings.INTEGRATIONS_PUBLISH_MAX_POLLS:
        message = "The platform was still processing the post after every status check; check it there."
        _settle(post, PostStatus.FAILED, last_response=outcome.response, next_attempt_at=None, last_error=message)
        return "failed"
    poll_at = timezone.now() + timedelta(seconds=settings.INTEGRATIONS_PUBLISH_POLL_SECONDS)
    _settle(post, PostStatus.PUBLISHING, publish_id=publish_id, last_response=outcome.response,
            next_attempt_at=poll_at)  # fmt: skip
    _enqueue(post.pk, countdown=settings.INTEGRATIONS_PUBLISH_POLL_SECONDS)
    return "processing"


def _settle(post: ScheduledPost, status: str, **fields) -> None:
    """Record a step's result, only while this worker's claim holds (still publishing)."""
    ScheduledPost.objects.filter(pk=post.pk, status=PostStatus.PUBLISHING).update(
        status=status, updated_at=timezone.now(), **fields
    )


def _failed(post: ScheduledPost, error: PublishError, *, polling: bool) -> str:
    fields: dict[str, Any] = {"last_error": error.message[:2000]}
    if error.response:
        fields["last_response"] = error.response
    logger.warning(
        "integrations.publish.error",
        extra={"post_id": post.pk, "platform": post.platform, "retryable": error.retryable, "polling": polling},
    )
    if error.reconnect:
        _settle(post, PostStatus.FAILED, next_attempt_at=None, **fields)
        connection_mark_needs_reconnect(connection=post.connection, reason=error.message)
        return "failed"
    if error.retryable and polling and post.polls < settings.INTEGRATIONS_PUBLISH_MAX_POLLS:
        wait = max(settings.INTEGRATIONS_PUBLISH_POLL_SECONDS, error.retry_after or 0.0)
        _settle(post, PostStatus.PUBLISHING, next_attempt_at=timezone.now() + timedelta(seconds=wait), **fields)
        _enqueue(post.pk, countdown=wait)
        return "retry"
    if error.retryable and not polling and post.attempts < settings.INTEGRATIONS_PUBLISH_MAX_ATTEMPTS:
        wait = _backoff(post.attempts, error.retry_after)
        _settle(post, PostStatus.SCHEDULED, next_attempt_at=timezone.now() + timedelta(seconds=wait), **fields)
        _enqueue(post.pk, countdown=wait)
        return "retry"
    _settle(post, PostStatus.FAILED, next_attempt_at=None, **fields)
    return "failed"


def connection_mark_needs_reconnect(*, connection: Connection, reason: str) -> bool:
    """The platform refused the connection's token: mark it needs reconnect and tell the agency's
    owners, once (a connection already marked is left alone)."""
    label = connection.get_platform_display()
    message = f"{label} refused the sign-in while publishing ({reason[:300]}). An owner or manager must reconnect."
    with transaction.atomic():
        changed = Connection.objects.filter(pk=connection.pk, status=ConnectionStatus.CONNECTED).update(
            status=ConnectionStatus.NEEDS_RECONNECT, last_error=message, updated_at=timezone.now()
        )
        if not changed:
            return False
        url = reverse("integrations:creator", kwargs={"creator_id": connection.creator_id})
        for owner in member_list(agency_id=connection.agency_id).filter(role=Role.OWNER):
            notification_send(
                membership=owner, title=f"Reconnect {connection.creator.display_name} on {label}", body=message,
                url=url, level=Notification.Level.WARNING,
            )  # fmt: skip
    logger.warning("integrations.publish.reconnect", extra={"connection_id": connection.pk})
    return True


def caption_from_studio(*, membership: Membership, generation_id: int, variation: int = 0) -> tuple[str, int]:
    """The text of a studio caption (one of its variations, or an idea's caption), for a post;
    answers the caption and the generation's id. Another tenant's generation is a 404."""
    from apps.studio.selectors import generation_get_for_member

    generation = generation_get_for_member(membership=membership, generation_id=generation_id)
    result = generation.result or {}
    items = result.get("variations") or result.get("ideas") or []
    if generation.status != "done" or not 0 <= variation < len(items) or not isinstance(items[variation], dict):
        raise ApplicationError("That studio result has no such caption.", field="generation_id")
    caption = str(items[variation].get("caption") or "").strip()
    if not caption:
        raise ApplicationError("That studio result is not a caption.", field="generation_id")
    return caption, generation.pk
