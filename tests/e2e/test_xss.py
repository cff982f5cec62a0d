"""The XSS gate's browser sample (issue 17, item 5): the corpus stored in the fields members see
most, then the pages that show them opened in Chromium.

tests/xss/ checks every page's HTML without a browser; this sample checks what the browser builds
and runs: no alert or other dialog opens, no payload sets ``window.__xss``, and no element holds a
payload's marker in an attribute the browser acts on (event handlers, URLs, ``style``, htmx and
websocket attributes, ``data-xss``) or in a script or style, after htmx has processed the page.
Each page must also show some payload as text, so a page that shows nothing cannot pass.
"""

from __future__ import annotations

from apps.accounts.models import Agency, Creator, User
from apps.notifications.models import Notification
from apps.studio.models import ContentIdea, Generation
from tests.conftest import build_world
from tests.e2e.conftest import E2E, log_in
from tests.xss.payloads import PAYLOADS, payload_text, storable

pytestmark = E2E

INSPECT = """() => {
  const hits = [];
  const acts = (name) => name.startsWith('on') || name.startsWith('hx-') || name.startsWith('data-hx-')
    || name.startsWith('ws-') || ['href', 'src', 'srcdoc', 'style', 'action', 'formaction', 'data'].includes(name);
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.includes('xss-17') || a.name === 'data-xss' || (a.value.includes('xss-17-') && acts(a.name))) {
        hits.push(`<${el.tagName.toLowerCase()} ${a.name}="${a.value.slice(0, 80)}">`);
      }
    }
    if (['SCRIPT', 'STYLE', 'IFRAME', 'OBJECT', 'EMBED', 'BASE', 'META'].includes(el.tagName)
        && el.outerHTML.includes('xss-17-')) hits.push(el.outerHTML.slice(0, 120));
  }
  return {hits, xss: window.__xss ?? null, shown: (document.body.innerText.match(/xss-17-\\d+-/g) || []).length};
}"""


def _texts(slot: str, limit: int | None = None) -> list[str]:
    texts = [payload_text(n, f"{slot}{n}") for n in range(len(PAYLOADS)) if storable(n)]
    return [text for text in texts if limit is None or len(text) <= limit]


def _store_payloads(world) -> None:
    every = "\n".join(_texts("p"))
    Creator.objects.filter(pk=world.creator.pk).update(
        display_name=_texts("n", 80)[5],
        persona=every,
        voice="\n".join(_texts("v")),
        niche=_texts("c", 80)[1],
        avoid_words=_texts("w", 200),
        avoid_topics=_texts("t", 200)[::-1],
    )
    Agency.objects.filter(pk=world.agency.pk).update(name=_texts("a", 120)[9])
    User.objects.filter(pk=world.chatter.user.pk).update(full_name=_texts("u", 150)[40])
    for index, text in enumerate(_texts("b", 200)[:12]):
        # Rows, not notification_send: its push needs an event loop of its own, and Playwright's runs here.
        Notification.objects.create(
            agency=world.agency, user=world.owner.user, title=text, body=_texts("d")[-1 - index]
        )
    Generation.objects.create(
        agency=world.agency, creator=world.creator, type="caption", status="done", text=every,
        result={"variations": _texts("r")[:5]}, saved=True,
    )  # fmt: skip
    ContentIdea.objects.create(
        agency=world.agency, creator=world.creator, title=_texts("i", 200)[2], description=every,
        category="photo", fingerprint="xss", tags=_texts("g", 50)[:5],
    )  # fmt: skip


def test_stored_payloads_stay_inert_in_the_browser(server, browser):
    world = build_world("Browser XSS")
    _store_payloads(world)
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, server, world.owner.user.email)
    pages = [
        "/",
        f"/settings/creators/{world.creator.pk}/",
        "/settings/creators/",
        "/studio/",
        "/studio/?type=caption",
        "/studio/history/",
        "/studio/ideas/",
        "/notifications/",
        "/settings/members/",
        "/settings/agency/",
    ]
    for path in pages:
        page.goto(server + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # htmx "load" triggers and autofocus handlers had their chance
        result = page.evaluate(INSPECT)
        assert not dialogs, f"{path}: a dialog opened: {dialogs}"
        assert result["xss"] is None, f"{path}: payload {PAYLOADS[int(result['xss'])].label!r} ran"
        assert not result["hits"], f"{path}: payload markup in the DOM: {result['hits'][:5]}"
        assert result["shown"] > 0, f"{path}: shows no payload, so it proves nothing"
    context.close()


def test_the_browser_check_sees_payloads_that_were_not_escaped(browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    raw = "".join(payload_text(n, "raw") for n in (5, 15, 22))  # img onerror, "><b data-xss>, javascript: link
    page.set_content(f"<html><body><p>{raw}</p></body></html>")
    page.wait_for_timeout(200)
    result = page.evaluate(INSPECT)
    assert result["xss"] == 5
    assert len(result["hits"]) >= 2, result["hits"]  # the <b data-xss> and the javascript: href
    page.close()
