"""The fan CRM pages against the XSS corpus (tests/xss/payloads.py): every hostile string stored in
what fans, members and CSV files write (names, tags, notes, templates, segments, messages, import
reports) is shown as text on every page that shows it, never as markup. A quick, focused run of
what the full gate (tests/xss) checks across the whole product."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.messaging.imports import fan_import_start
from apps.messaging.models import Direction, FanImport, FanNote, MessageStatus, Source
from tests.conftest import login_client
from tests.messaging.factories import (
    ConversationFactory,
    FanFactory,
    FanTagFactory,
    MessageFactory,
    PurchaseFactory,
    SegmentFactory,
    TemplateFactory,
)
from tests.xss.checker import scan_html
from tests.xss.payloads import PAYLOADS, payload_text, storable

pytestmark = pytest.mark.django_db

NUMBERS = [n for n in range(len(PAYLOADS)) if storable(n)]


def _fit(text: str, limit: int, n: int) -> str:
    """The payload when the column holds it whole (a cut payload proves nothing), else a plain value."""
    return text if len(text) <= limit else f"plain{n}"


def _store(world) -> list[str]:
    """One fan per payload, with the payload in every free-text place; the pages to read."""
    pages = ["/fans/", "/segments/", "/message-templates/", "/audit/", "/fans/import/"]
    for n in NUMBERS:
        text = payload_text(n, "a")
        fan = FanFactory(creator=world.creator, display_name=text, username=_fit(payload_text(n, "u"), 80, n),
                         timezone=_fit(payload_text(n, "tz"), 64, n))  # fmt: skip
        fan.spent_tips = fan.total_spent = Decimal("10")
        fan.save()
        FanTagFactory(fan=fan, name=_fit(payload_text(n, "t"), 40, n))
        FanNote.objects.create(agency=world.agency, fan=fan, author=world.owner.user, text=payload_text(n, "n"))
        PurchaseFactory(fan=fan)
        conversation = ConversationFactory(fan=fan)
        MessageFactory(conversation=conversation, direction=Direction.OUTBOUND, source=Source.TEMPLATE,
                       status=MessageStatus.SENT, text=payload_text(n, "m"), sent_by_email="a@example.com")  # fmt: skip
        SegmentFactory(agency=world.agency, name=_fit(payload_text(n, "s"), 80, n), filters={"tags": [f"t{n}"]})
        template = TemplateFactory(
            agency=world.agency, name=_fit(payload_text(n, "tn"), 80, n), text=payload_text(n, "tt")
        )
        pages += [f"/fans/{fan.pk}/", f"/message-templates/{template.pk}/"]
    quotable = [n for n in NUMBERS if '"' not in PAYLOADS[n].template]
    bad = "platform,platform_fan_id,username\n" + "".join(
        f'"{payload_text(n, "p")}","{_fit(payload_text(n, "i"), 64, n)}",x\n' for n in quotable
    )
    job = fan_import_start(membership=world.owner, creator=world.creator, kind="fans",
                           file=SimpleUploadedFile("payloads.csv", bad.encode()))  # fmt: skip
    assert job.status == "failed" and job.errors
    FanImport.objects.filter(pk=job.pk).update(filename=payload_text(1, "fn"))
    pages.append(f"/fans/import/{job.pk}/")
    return pages


def test_every_payload_is_shown_as_text_on_the_fan_crm_pages(world):
    pages = _store(world)
    client = login_client(world.owner)
    shown: set[str] = set()
    findings: list[str] = []
    for url in pages:
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            assert response.status_code == 200, url
            scan = scan_html(response.content.decode())
            findings += [f"{url}: {finding}" for finding in scan.findings]
            shown |= scan.shown
    assert not findings, "\n".join(findings[:20])
    # The scan really read the payloads: each display name was shown, escaped, on some page.
    assert {f"xss-17-{n}-a" for n in NUMBERS} <= shown


def test_template_preview_and_errors_show_payloads_as_text(world):
    fan = FanFactory(creator=world.creator, display_name=payload_text(0, "d"))
    client = login_client(world.owner)
    findings = []
    for n in NUMBERS:
        text = payload_text(n, "x")
        for url, data in (
            ("/message-templates/preview/", {"text": "Hi {fan.name} " + text.replace("{", "{{").replace("}", "}}"),
                                             "fan": fan.pk}),
            ("/message-templates/preview/", {"text": text, "fan": fan.pk}),
            ("/message-templates/new/", {"name": text, "category": "custom", "text": text}),
            ("/segments/new/", {"name": text, "tags": text}),
        ):  # fmt: skip
            response = client.post(url, data, HTTP_HX_REQUEST="true")
            assert response.status_code < 500, url
            findings += [f"{url} #{n}: {f}" for f in scan_html(response.content.decode()).findings]
    assert not findings, "\n".join(findings[:20])
