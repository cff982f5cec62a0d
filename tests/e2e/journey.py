"""What a browser journey needs beyond Playwright: a watch on everything going wrong in the page,
screenshots of each step, and the test mailbox.

A journey (tests/e2e/test_journeys.py) walks a user through the product in Chromium against the
daphne server. ``Journey`` opens every page in a browser context that records console errors,
uncaught exceptions, failed requests, websocket errors and responses of 400 or more; each
``step`` fails the test listing them, so a page that renders but logs an error, loses a static
file or answers 500 to an htmx call does not pass. A status the journey means to see (a 404 for
another tenant's object) is declared around the action with ``expect_status``.

With ``HUNTAZE_SCREENSHOTS=<directory>`` (``make screenshots`` sets it to docs/screenshots) the
steps that name a screenshot save a PNG of the page at a fixed 1280x800 viewport, named
``<journey>-<nn>-<name>.png``: one per step a reader of the docs needs to see, since every
picture is committed (about 60 KB each).

``Mailbox`` reads the emails the server and the Celery worker wrote with Django's file backend
(``EMAIL_URL=filemail://…``): the daphne child and the worker are separate processes, so the
locmem outbox of the test process never sees them.
"""

from __future__ import annotations

import email
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS_ENV = "HUNTAZE_SCREENSHOTS"
# Django's file backend ends every message with a line of 79 dashes.
_SEPARATOR = re.compile(r"^-{79}$", re.MULTILINE)


class JourneyError(AssertionError):
    """The browser reported something wrong during a journey."""


@dataclass
class Journey:
    browser: object
    base: str
    name: str
    screenshots: Path | None = None
    problems: list[str] = field(default_factory=list)
    _expected: list[tuple[int, str]] = field(default_factory=list)
    _count: int = 0

    @classmethod
    def start(cls, browser, base: str, name: str) -> Journey:
        directory = os.environ.get(SCREENSHOTS_ENV)
        screenshots = Path(directory) if directory else None
        if screenshots:
            screenshots.mkdir(parents=True, exist_ok=True)
        return cls(browser=browser, base=base, name=name, screenshots=screenshots)

    def __enter__(self) -> Journey:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            self.check()
        elif self.problems:
            # A step that timed out often did so because of what the browser saw (a 500 behind
            # a form post): say it alongside the timeout.
            error.add_note("the browser reported:\n  " + "\n  ".join(self.problems))

    def new_page(self, who: str):
        """A page in a fresh browser context (its own cookies), watched for problems."""
        context = self.browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        context.set_default_timeout(15_000)
        context.on("console", lambda msg: self._on_console(who, msg))
        context.on("weberror", lambda error: self.problems.append(f"[{who}] uncaught error: {error.error}"))
        context.on("requestfailed", lambda request: self._on_failed(who, request))
        context.on("response", lambda response: self._on_response(who, response))
        page = context.new_page()
        page.on("websocket", lambda ws: self._watch_socket(who, ws))
        return page

    def step(self, page, screenshot: str | None = None) -> None:
        """End of one step: fail on anything the browser reported, then save the screenshot named
        ``screenshot``, if any: the top of the page with nothing focused, so pictures compare."""
        page.wait_for_load_state("load")
        self.check()
        if screenshot is None:
            return
        self._count += 1
        if self.screenshots:
            page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
            path = self.screenshots / f"{self.name}-{self._count:02d}-{screenshot}.png"
            page.screenshot(path=path, animations="disabled", caret="hide")

    def check(self) -> None:
        if self.problems:
            found, self.problems = self.problems, []
            raise JourneyError("the browser reported problems:\n  " + "\n  ".join(found))

    @contextmanager
    def expect_status(self, status: int, path: str) -> Iterator[None]:
        """Allow one response with this status for this path (a deliberate 404) inside the block."""
        entry = (status, self.base + path)
        self._expected.append(entry)
        try:
            yield
        finally:
            if entry in self._expected:
                self._expected.remove(entry)
                raise JourneyError(f"expected a {status} from {path}, which never came")

    def _on_console(self, who: str, msg) -> None:
        # "Failed to load resource" repeats a response or failed request the other listeners
        # report (or a status the journey declared).
        if msg.type == "error" and not msg.text.startswith("Failed to load resource:"):
            where = msg.location.get("url", "")
            self.problems.append(f"[{who}] console error: {msg.text} ({where})")

    def _on_failed(self, who: str, request) -> None:
        # The page itself cancelled it: a navigation leaving while the favicon or an htmx call
        # was in flight. A refused, reset, blocked or timed-out request is still a problem.
        if request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"[{who}] request failed: {request.method} {request.url} ({request.failure})")

    def _on_response(self, who: str, response) -> None:
        if response.status < 400:
            return
        entry = (response.status, response.url)
        if entry in self._expected:
            self._expected.remove(entry)
            return
        self.problems.append(f"[{who}] HTTP {response.status}: {response.request.method} {response.url}")

    def _watch_socket(self, who: str, socket) -> None:
        socket.on("socketerror", lambda error: self.problems.append(f"[{who}] websocket {socket.url}: {error}"))


@dataclass
class Mailbox:
    """The directory Django's file email backend writes into (one file per connection)."""

    path: Path

    @property
    def email_url(self) -> str:
        # django-environ drops the first slash after the scheme: four slashes keep the path absolute.
        return f"filemail:///{self.path.resolve()}"

    def messages(self) -> list[Message]:
        found = []
        for file in sorted(self.path.iterdir()):
            for chunk in _SEPARATOR.split(file.read_text()):
                if chunk.strip():
                    found.append(email.message_from_string(chunk.lstrip("\n")))
        return found

    def wait_for(self, *, to: str, subject: str, timeout: float = 30) -> Message:
        """The first message to this address whose subject contains ``subject``, once it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if message["To"] == to and subject in message["Subject"]:
                    return message
            if time.monotonic() > deadline:
                seen = [(m["To"], m["Subject"]) for m in self.messages()]
                raise TimeoutError(f"no email to {to} about {subject!r} within {timeout}s; mailbox: {seen}")
            time.sleep(0.2)

    def link(self, *, to: str, subject: str, path: str) -> str:
        """The URL in that message whose path starts with ``path``."""
        message = self.wait_for(to=to, subject=subject)
        body = message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")
        match = re.search(rf"https?://[^\s/]+{re.escape(path)}\S*", body)
        if not match:
            raise AssertionError(f"no {path} link in the email to {to}:\n{body}")
        return match.group(0)
