"""Browser tests (marked ``e2e``): Debian's Chromium, driven by Playwright, against a real daphne
process on the test run's database. Shared by every file in tests/e2e.

``server`` starts daphne; ``browser`` launches Chromium; ``log_in`` signs a member in through the
login form. Each test file sets ``pytestmark = E2E``.
"""

from __future__ import annotations

import shutil

import pytest
from django.db import connections

from tests.accounts.factories import PASSWORD
from tests.processes import daphne_args, free_port, running, wait_for_http

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
def server(transactional_db):
    port = free_port()
    with running(daphne_args(port)):
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/accounts/login/")
        yield base


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
