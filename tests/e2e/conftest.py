"""Browser tests (marked ``e2e``): Debian's Chromium, driven by Playwright, against a real daphne
process on the test run's database. Shared by every file in tests/e2e.

``server`` starts daphne (emails into ``mailbox``, links pointing at the server); ``worker`` a
Celery worker with the same environment; ``browser`` launches Chromium; ``log_in`` signs a
member in through the login form. Each test file sets ``pytestmark = E2E``.
"""

from __future__ import annotations

import io
import shutil

import pytest
from django.core.management import call_command
from django.db import connections

from tests.accounts.factories import PASSWORD
from tests.e2e.journey import Mailbox
from tests.processes import celery_worker_args, daphne_args, free_port, running, wait_for_http

CHROMIUM = "/usr/bin/chromium"
E2E = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing():
    """Keep the real hashers: the daphne process must verify the passwords these tests set."""


@pytest.fixture
def mailbox(tmp_path) -> Mailbox:
    """Where the server and the worker write their emails (Django's file backend)."""
    (tmp_path / "mailbox").mkdir()
    return Mailbox(tmp_path / "mailbox")


@pytest.fixture
def server_env(mailbox) -> dict[str, str]:
    """Environment shared by the daphne server and the Celery worker: emails into the mailbox,
    links in them pointing at this server, and the AI ledger and the metrics written in the
    background as in production (the test process itself flushes them by hand)."""
    port = free_port()
    return {
        "SITE_URL": f"http://127.0.0.1:{port}",
        "EMAIL_URL": mailbox.email_url,
        "AI_LEDGER_FLUSH_SECONDS": "1",
        "METRICS_FLUSH_SECONDS": "1",
    }


@pytest.fixture
def server(transactional_db, server_env):
    base = server_env["SITE_URL"]
    with running(daphne_args(int(base.rsplit(":", 1)[1])), env=server_env):
        wait_for_http(base + "/accounts/login/")
        yield base


@pytest.fixture
def worker(transactional_db, server_env):
    """A real Celery worker on the test database and broker, for journeys whose emails are tasks."""
    call_command("declare_queues", stdout=io.StringIO())  # as `make run` does before its processes
    with running(celery_worker_args(), env=server_env):
        yield


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async-safety guard does not apply to them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
        # The connection the test's ORM calls opened while Playwright's loop ran is not the one
        # pytest-django closes at the end; left open, it keeps PostgreSQL from dropping the test
        # database ("being accessed by other users").
        connections.close_all()


def log_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")
