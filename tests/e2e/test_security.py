"""The Content-Security-Policy in Chromium: the main pages, a streamed generation and a live
notification run with no console error and no CSP violation, so nothing the product needs is
blocked; and a page with an injected inline script and handler is blocked and caught, so the gate
can go red.
"""

from __future__ import annotations

from tests.accounts.factories import PASSWORD
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in

pytestmark = E2E

# Playwright adds this through the DevTools protocol, which the page's CSP does not govern.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def watched_page(browser):
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and page.problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    return page


def problems(page) -> list[str]:
    return page.problems + [f"CSP: {v}" for v in page.evaluate("window.__cspViolations")]


def test_main_pages_run_under_the_policy_without_errors(server, browser):
    world = build_world("Strict")
    page = watched_page(browser)
    log_in(page, server, world.owner.user.email)
    for path in [
        "/",
        "/settings/agency/",
        "/settings/creators/",
        "/settings/members/",
        "/settings/api-tokens/",
        "/settings/ai/",
        "/notifications/",
        "/ai/status/",
        "/studio/history/",
        "/studio/ideas/",
        "/studio/performance/",
    ]:
        response = page.goto(server + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        assert problems(page) == [], path

    # The notifications websocket opens: connect-src 'self' covers ws: to the same host.
    page.goto(server + "/")
    page.wait_for_function("() => document.body['htmx-internal-data']?.webSocket?.socket?.readyState === 1")

    # A streamed generation over the studio websocket.
    page.goto(server + "/studio/?type=caption")
    page.wait_for_function(
        "() => document.querySelector('.studio')['htmx-internal-data']?.webSocket?.socket?.readyState === 1"
    )
    page.get_by_role("button", name="Generate").click()
    page.locator("#studio-result").get_by_role("button", name="Save to library").wait_for(timeout=15_000)

    # The switcher that used to be an onchange= handler now works from static/js/app.js.
    other = world.other_creator.display_name
    page.get_by_label("Creator", exact=True).select_option(label=other)
    page.locator("#toasts", has_text=f"Now working as {other}").wait_for()
    assert problems(page) == []


def test_an_injected_inline_script_is_blocked_and_caught(server, browser):
    world = build_world("Broken")
    page = watched_page(browser)
    log_in(page, server, world.owner.user.email)

    # A deliberately broken template: the real page and headers, with inline code added.
    def inject(route):
        response = route.fetch()
        body = response.text().replace(
            "</main>",
            '<script>window.__ran = "inline";</script><img src="/x.png" onerror="window.__ran = \'handler\'"></main>',
        )
        route.fulfill(response=response, body=body)

    page.route(server + "/settings/agency/", inject)
    page.goto(server + "/settings/agency/")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__ran") is None
    found = problems(page)
    assert any(p.startswith("CSP: script-src-elem inline") for p in found), found
    assert any(p.startswith("CSP: script-src-attr inline") for p in found), found


def test_admin_and_api_docs_run_under_their_policy(server, browser):
    world = build_world("Staff")
    world.owner.user.is_staff = world.owner.user.is_superuser = True
    world.owner.user.save()
    page = watched_page(browser)
    log_in(page, server, world.owner.user.email)
    for path in ["/admin/", "/admin/accounts/user/", "/admin/accounts/membership/", "/api/v1/docs"]:
        assert page.goto(server + path).status == 200, path
        page.wait_for_load_state("networkidle")
    page.locator(".swagger-ui .info").wait_for()
    assert problems(page) == []


def test_two_factor_set_up_and_login_in_the_browser(server, browser):
    from apps.accounts.models import AuthenticatorDevice
    from tests.accounts.test_two_factor import code_now

    world = build_world("Twofa")
    page = watched_page(browser)
    log_in(page, server, world.owner.user.email)
    page.goto(server + "/settings/two-factor/")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    qr = page.get_by_alt_text("QR code for your authenticator app")
    qr.wait_for()
    assert page.evaluate("img => img.naturalWidth", qr.element_handle()) > 0  # img-src data: allows it
    device = AuthenticatorDevice.objects.get(user=world.owner.user, confirmed=False)
    page.get_by_label("Code from the app").fill(code_now(device))
    page.get_by_role("button", name="Turn on").click()
    page.get_by_text("Save your recovery codes now.").wait_for()
    assert page.locator("#recovery-codes li").count() == 10

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email").fill(world.owner.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server + "/accounts/login/code/")
    page.get_by_label("Code").fill(code_now(device))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(server + "/")
    assert problems(page) == []
