"""The XSS gate (issue 17, item 5): the corpus of tests/xss/payloads.py stored through every form
field and API string field, then every page read back: each payload renders escaped and inert.

How forms, fields and pages are found, and how payloads are spread over fields (every field
takes several, every payload reaches pages and the API), is in tests/xss/gate.py. The gate must
be able to fail, so it is tested too: every payload, left unescaped in each context where it
bites, is reported by the checker, and a deliberately unsafe page and API operation mounted by a
test-only URLconf turn the same walk red.
"""

from __future__ import annotations

import json
import time
from html import escape

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpResponse
from django.template import Context, Template
from django.test import Client
from django.urls import include, path
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.safestring import mark_safe
from ninja import NinjaAPI, Schema

from apps.accounts import services as account_services
from apps.accounts.middleware import SESSION_AGENCY
from apps.accounts.models import Invitation
from apps.accounts.selectors import email_verification_token, invitation_token
from apps.ai import registry as ai_registry
from apps.studio.models import Generation
from tests.conftest import build_world, login_client
from tests.test_cross_tenant import register_objects
from tests.xss.checker import scan_html, scan_json
from tests.xss.gate import API_ROUNDS, ApiWalker, FormWalker, Report, Slots, page_urls, seed_stored_text, sweep
from tests.xss.payloads import PAYLOADS, payload_text, storable

CONTEXTS = {
    "html": "<p>{}</p>",
    "attr": '<input name="q" value="{}">',
    "attr1": "<input name='q' value='{}'>",
    "bare": "<input name=q value={}>",
    "url": '<a href="{}">open</a>',
    "rcdata": "<textarea>{}</textarea>",
}


def test_the_corpus_has_at_least_50_distinct_payloads():
    assert len(PAYLOADS) >= 50
    assert len({p.template for p in PAYLOADS}) == len(PAYLOADS)
    assert all("MARK" in p.template for p in PAYLOADS)
    labels = " ".join(p.label for p in PAYLOADS)
    for family in ("script", "onerror", "javascript", "svg", "django", "hx-", "fullwidth", "zero-width", "style",
                   "textarea", "data url", "rtl", "srcdoc", "mxss", "markdown"):  # fmt: skip
        assert family in labels, family


@pytest.mark.parametrize("n", range(len(PAYLOADS)), ids=[p.label for p in PAYLOADS])
def test_checker_catches_each_payload_unescaped_and_passes_it_escaped(n):
    text = payload_text(n, "t")
    for context in PAYLOADS[n].contexts:
        if context == "template":
            rendered = Template(f"<p>{text}</p>").render(Context({}))
            assert payload_text(n, "t") not in rendered
            assert f"xss-17-{n}-t" not in scan_html(rendered).shown, "an evaluated template payload counts as shown"
        elif context in CONTEXTS:
            assert scan_html(CONTEXTS[context].format(text)).findings, f"unescaped in {context} went unnoticed"
    for context, page in CONTEXTS.items():
        if context in ("bare", "url"):
            continue  # escaping cannot make these safe: templates quote attributes and check URL schemes
        scan = scan_html(page.format(escape(text)))
        assert not scan.findings, scan.findings
        assert scan.shown == {f"xss-17-{n}-t"}, "an escaped payload must count as shown"


def test_json_check_catches_html_escaped_and_changed_values():
    text = payload_text(5, "j")
    assert not scan_json({"name": text}, {"name": text}).findings
    assert scan_json({"name": text}, {"name": text}).shown == {"xss-17-5-j"}
    assert scan_json({"name": escape(text)}).findings
    assert scan_json({"name": text[:-3]}, {"name": text}).findings


def test_a_search_box_that_keeps_the_start_of_a_payload_is_faithful_even_cut_inside_its_marker():
    """A search box keeps its first 80 characters, which may end inside the marker ("…xss-17-");
    a value that is not the start of a payload is still reported."""
    text = payload_text(39, "225")
    cut = text[: text.index("xss-17-") + len("xss-17-")]
    assert not scan_html(f'<input name="q" value="{escape(cut)}">').findings
    assert not scan_html(f'<input name="q" value="{escape(cut + "3")}">').findings
    assert scan_html(f'<input name="q" value="{escape("changed " + cut)}">').findings


# --- The gate ----------------------------------------------------------------------------------


def _run_gate(world, *, urls=None) -> Report:
    """Forms (anonymous, then the owner), the API, stored rows, then the sweep of every page."""
    start = time.monotonic()
    report, slots = Report(), Slots()
    objects = register_objects(world)
    invitation = Invitation.objects.create(agency=world.agency, email="xss-invitee@example.com", role="chatter",
                                           invited_by=world.owner.user)  # fmt: skip
    viewer = world.viewer.user
    overrides = {
        "accounts:invitation-accept": {"token": invitation_token(invitation)},
        "accounts:email-verify": {"token": email_verification_token(world.owner.user)},
        "accounts:password-reset-confirm": {
            "uidb64": urlsafe_base64_encode(force_bytes(viewer.pk)),
            "token": default_token_generator.make_token(viewer),
        },
    }
    urls = urls if urls is not None else page_urls(objects, overrides)
    owner = login_client(world.owner)

    def back_to_agency(client: Client) -> None:
        # Creating an agency switches to it; the walk stays in the world's agency.
        if client is owner and client.session.get(SESSION_AGENCY) != world.agency.pk:
            session = client.session
            session[SESSION_AGENCY] = world.agency.pk
            session.save()

    walker = FormWalker(report, slots, reset_session=back_to_agency)
    offset = 0
    for make_client in (Client, lambda: owner):
        for form in walker.discover(make_client(), urls):
            walker.submit_rounds(make_client, form, offset)
            offset += 7
    _, secret = account_services.api_token_create(membership=world.owner, name="xss gate")
    api = ApiWalker(report, slots, Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), objects)
    api.walk_writes()
    api.walk_reads(rounds=API_ROUNDS)
    seed_stored_text(world.agency.pk, report, slots)
    api.walk_reads()
    sweep(walker, owner, urls, "owner")
    sweep(walker, login_client(world.chatter), urls, "chatter")
    report.seconds = round(time.monotonic() - start, 1)
    return report


@pytest.fixture
def offline_ai(builtin, monkeypatch):
    """The built-in writer answers every generation: the agency connections the walk creates
    (any label, key and model) are never called, so the gate stays off the network."""
    monkeypatch.setattr(ai_registry, "_agency_configs", lambda agency_id: [])


# Every payload through every form, operation and page: minutes, not the suite's 120 s default.
@pytest.mark.timeout(900)
def test_every_payload_in_every_field_renders_escaped_and_inert(transactional_db, offline_ai, capsys):
    # Committed rows: the API's Server-Sent Events stream runs on its own thread and connection.
    world = build_world("XSS Co")
    report = _run_gate(world)
    assert not report.errors, "\n".join(report.errors[:20])
    assert not report.findings, f"{len(report.findings)} injections:\n" + "\n".join(report.findings[:40])
    every = {n for n in range(len(PAYLOADS)) if storable(n)}  # NUL is refused at the door (400)
    missing_html = every - report.payloads_shown()
    assert not missing_html, f"never shown escaped on a page: {[PAYLOADS[n].label for n in sorted(missing_html)]}"
    missing_json = every - report.payloads_shown(json_answer=True)
    assert not missing_json, f"never returned by the API: {[PAYLOADS[n].label for n in sorted(missing_json)]}"
    assert len(report.forms) >= 15 and len(report.operations) >= 15 and len(report.pages) >= 20
    typed = {name: ns for name, ns in report.stored.items() if not name.startswith(("stored ", "tampered "))}
    short = {name: len(ns) for name, ns in typed.items() if len(ns) < 3}
    assert not short, f"fields that took fewer than 3 payloads: {short}"
    with capsys.disabled():
        print(
            f"\nXSS gate: {len(PAYLOADS)} payloads, {len(report.stored)} fields, {len(report.forms)} forms, "
            f"{len(report.operations)} API operations, {len(report.pages)} pages, {report.requests} requests, "
            f"{report.seconds} s"
        )


# --- Text a model wrote ------------------------------------------------------------------------


def _model_reply(first: int) -> tuple[str, list[str], set[str]]:
    """A caption reply whose five variations are payloads ``first`` to ``first + 4``, and their markers."""
    numbers = [(first + k) % len(PAYLOADS) for k in range(5)]
    numbers = [n if storable(n) else 0 for n in numbers]  # NUL: see the test below
    texts = [payload_text(n, f"ai{first + k}") for k, n in enumerate(numbers)]
    markers = {f"xss-17-{n}-ai{first + k}" for k, n in enumerate(numbers)}
    return json.dumps({"variations": [{"caption": text} for text in texts]}), texts, markers


def test_text_a_model_wrote_is_escaped_on_the_page_and_data_in_the_api(world, client_for, remote):
    """A model can be talked into writing markup (a fan's message, a persona): what it writes is
    shown escaped and returned verbatim, for every payload."""
    client = client_for(world.manager)
    _, secret = account_services.api_token_create(membership=world.manager, name="ai xss")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    shown: set[str] = set()
    expected: set[str] = set()
    for first in range(0, len(PAYLOADS), 5):
        remote.reply_text, texts, markers = _model_reply(first)
        expected |= markers
        page = client.post("/studio/", {"type": "caption", "creator_id": world.creator.pk, "variations": "5"})
        scan = scan_html(page.content.decode())
        assert not scan.findings, scan.findings
        shown |= scan.shown
        answer = api.post("/api/v1/studio/generations", {"type": "caption", "creator_id": world.creator.pk,
                                                         "variations": 5}, content_type="application/json")  # fmt: skip
        assert answer.status_code == 201, answer.content
        assert not scan_json(answer.json()).findings
        assert [v["caption"] for v in answer.json()["result"]["variations"]] == [text.strip() for text in texts]
    history = scan_html(client.get("/studio/history/").content.decode())
    assert not history.findings, history.findings
    assert shown == expected, "every payload the model wrote is shown, escaped"
    assert Generation.objects.filter(agency=world.agency).count() == 2 * len(range(0, len(PAYLOADS), 5))


def test_a_model_answer_with_nul_is_stored_without_it(world, client_for, remote):
    """PostgreSQL cannot store NUL; a model that writes one must not turn the page into a 500."""
    remote.reply_text = json.dumps({"variations": [{"caption": "one\x00two <b>x</b>"}]})
    page = client_for(world.manager).post("/studio/", {"type": "caption", "creator_id": world.creator.pk})
    assert page.status_code == 200
    generation = Generation.objects.get(agency=world.agency)
    assert generation.status == "done" and "\x00" not in generation.text
    assert generation.result["variations"][0]["caption"] == "onetwo <b>x</b>"


@pytest.mark.django_db(transaction=True)
async def test_text_a_model_wrote_is_escaped_in_the_studio_stream(remote):
    """The studio websocket streams the model's raw tokens, then the result: both escaped."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from huntaze.asgi import application

    world = await sync_to_async(build_world)("Stream XSS")
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    remote.configure(chunk_size=3)  # payloads cut mid-tag across frames
    remote.reply_text, _texts, markers = _model_reply(0)
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    await communicator.send_to(text_data=json.dumps({"action": "generate", "type": "caption", "variations": 5,
                                                     "creator_id": world.creator.pk}))  # fmt: skip
    frames = []
    while "Save to library" not in (frames[-1] if frames else ""):
        frames.append(await communicator.receive_from(timeout=10))
    await communicator.disconnect()
    assert sum('hx-swap-oob="beforeend"' in frame for frame in frames) >= 1, "the raw reply was streamed"
    for frame in frames:
        assert not scan_html(frame).findings, frame
    assert scan_html(frames[-1]).shown == markers


# --- The gate goes red on an unsafe page -------------------------------------------------------

BROKEN = {"note": ""}


def _unsafe_page(request):
    """Stores what it is sent and shows it with mark_safe: the bug the gate exists to catch."""
    if request.method == "POST":
        BROKEN["note"] = request.POST.get("note", "")
    form = '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{}">' \
           '<textarea name="note"></textarea><button>Save</button></form>'  # fmt: skip
    from django.middleware.csrf import get_token

    return HttpResponse(
        mark_safe(f"<html><body>{form.format(get_token(request))}<p>{BROKEN['note']}</p></body></html>")
    )


class NoteIn(Schema):
    note: str


unsafe_api = NinjaAPI(urls_namespace="xss-broken-api")


@unsafe_api.post("/notes")
def _unsafe_note(request, payload: NoteIn):
    return {"note": escape(payload.note)}  # HTML-escaping JSON data: a client would show "&lt;"


urlpatterns = [
    path("xss-broken/", _unsafe_page),
    path("xss-broken-api/", unsafe_api.urls),
    path("", include("huntaze.urls")),
]


@pytest.mark.urls("tests.xss.test_gate")
def test_the_gate_goes_red_on_a_page_that_marks_stored_input_safe(db):
    world = build_world("Broken Co")
    report = Report()
    walker = FormWalker(report, Slots())
    owner = login_client(world.owner)
    for form in walker.discover(owner, ["/xss-broken/"]):
        walker.submit_rounds(lambda: owner, form, 0)
    assert report.forms, "the walk did not find the unsafe form"
    assert any("/xss-broken/" in finding for finding in report.findings)
    assert len({f.split(":")[-2] for f in report.findings}) > 1


@pytest.mark.urls("tests.xss.test_gate")
def test_the_gate_goes_red_on_an_api_that_escapes_json_data(db):
    world = build_world("Broken Co")
    report = Report()
    _, secret = account_services.api_token_create(membership=world.owner, name="broken")
    api = ApiWalker(report, Slots(), Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), {})
    api.schema = Client().get("/xss-broken-api/openapi.json").json()
    api.components = api.schema["components"]["schemas"]
    api.walk_writes()
    assert any("HTML-escaped in JSON" in finding for finding in report.findings), report.findings
