"""The XSS corpus (issue 17, item 5): hostile strings stored through every form and API field.

Each payload is a template with two placeholders: ``MARK`` becomes a marker ``xss-17-<n>-<slot>``
(``n`` the payload's number, ``slot`` one use of it in one field), ``NUM`` the number ``n``. A
payload that gets out of its text puts the marker into an element, attribute, script, style or
comment of the page, where tests/xss/checker.py finds it; one that runs in a browser sets
``window.__xss`` to ``n`` (tests/e2e/test_xss.py reads it). Rendered as text, the whole payload
appears verbatim: that is how the gate proves each payload was stored and shown.

``contexts`` says where each payload bites when a template forgets to escape, and the checker's own
test (tests/xss/test_gate.py) inserts every payload unescaped into each of its contexts and
requires a finding, so a payload that could never be caught is not in the corpus:

- ``html``: between tags; ``attr``/``attr1``/``bare``: in a double-quoted, single-quoted or
  unquoted attribute value; ``url``: as an ``href``; ``rcdata``: inside ``<textarea>``/``<title>``;
  ``template``: the text itself evaluated as a Django template (it must render literally, so the
  evaluated output no longer contains the whole payload); ``text``: inert in HTML, aimed at other
  renderers (Markdown, JavaScript strings, double decoding, Unicode normalisation), so it must
  only come back verbatim.

Commas are avoided: comma-separated fields (a creator's boundaries) split on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER_PREFIX = "xss-17-"
MARKER = re.compile(r"xss-17-(\d+)-([0-9a-z]+)")


@dataclass(frozen=True)
class Payload:
    template: str
    contexts: tuple[str, ...]
    label: str


def _p(label: str, template: str, *contexts: str) -> Payload:
    return Payload(template=template, contexts=contexts or (X,), label=label)


H, A, A1, B, U, R, T, X = "html", "attr", "attr1", "bare", "url", "rcdata", "template", "text"
# Closing the tag we sit in first makes a payload bite inside attributes and RCDATA too.
BREAK = (H, A, R)

PAYLOADS: tuple[Payload, ...] = (
    # Script tags.
    _p("script tag", '"></textarea><script>/*MARK*/window.__xss=NUM</script>', *BREAK),
    _p("mixed-case script", "<ScRiPt>/*MARK*/window.__xss=NUM</sCrIpT>", H),
    _p("script src data:", '<script src="data:text/javascript;base64,d2luZG93Ll9feHNzPTE=" id="MARK"></script>', H),
    _p("nested script", "<<script>script>/*MARK*/window.__xss=NUM<</script>/script>", H),
    _p("script breakout", "</script><script>/*MARK*/window.__xss=NUM</script>", H),
    # Event handlers.
    _p("img onerror", '<img src=x onerror="window.__xss=NUM" alt="MARK">', H),
    _p("img onerror unquoted", "<img src=x onerror=window.__xss=NUM//MARK>", H),
    _p("svg onload", '<svg onload="window.__xss=NUM" id="MARK"></svg>', H),
    _p("svg script", "<svg><script>/*MARK*/window.__xss=NUM</script></svg>", H),
    _p(
        "details ontoggle",
        '<details open ontoggle="window.__xss=NUM" data-xss="MARK"><summary>x</summary></details>',
        H,
    ),
    _p("input autofocus", '<input autofocus onfocus="window.__xss=NUM" data-xss="MARK">', H),
    _p("body onload", '<body onload="window.__xss=NUM" data-xss="MARK">', H),
    _p("video source onerror", '<video><source onerror="window.__xss=NUM" data-xss="MARK"></video>', H),
    _p("unknown tag onclick", "<x-card onclick=window.__xss=NUM data-xss=MARK>tap</x-card>", H),
    _p("unterminated tag", "<img src=x onerror=window.__xss=NUM alt=MARK ", H),
    # Breaking out of attributes.
    _p("break double quote", '"><b data-xss="MARK">bold</b>', H, A),
    _p("break single quote", "'><b data-xss='MARK'>bold</b>", H, A1),
    _p("autofocus onfocus", '" autofocus onfocus="window.__xss=NUM" data-xss="MARK', A),
    _p("autofocus onfocus single", "' autofocus onfocus='window.__xss=NUM' data-xss='MARK", A1),
    _p("unquoted attribute", "x onmouseover=window.__xss=NUM data-xss=MARK", B),
    _p("backtick attribute", "` onmouseover=window.__xss=NUM data-xss=MARK", B),
    # javascript:, data: and other URLs.
    _p("javascript url", "javascript:window.__xss=NUM//MARK", U),
    _p("javascript link", '<a href="javascript:window.__xss=NUM//MARK">open</a>', H),
    _p("entity-encoded javascript", '<a href="JaVaScRiPt&colon;window.__xss=NUM//MARK">open</a>', H),
    _p("javascript with tab", "java\tscript:window.__xss=NUM//MARK", U),
    _p("javascript with control char", '<a href=" &#14;javascript:window.__xss=NUM//MARK">open</a>', H),
    _p("data url", "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==#MARK", U),
    _p("vbscript url", "vbscript:msgbox(NUM)'MARK", U),
    _p("form action", '<form action="javascript:window.__xss=NUM"><button data-xss="MARK">go</button></form>', H),
    _p("iframe src", '<iframe src="javascript:parent.__xss=NUM" name="MARK"></iframe>', H),
    _p("object data", '<object data="javascript:window.__xss=NUM" name="MARK"></object>', H),
    _p("meta refresh", '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=NUM" name="MARK">', H),
    _p("base href", '<base href="javascript:/MARK/">', H),
    _p("markdown link", "[click me](javascript:window.__xss=NUM//MARK)", X),
    # Template syntax: must come out literally, never evaluated.
    _p("django variable", "{{ request.user.email }} MARK", T),
    _p("django tag", "{% now 'Y' %} MARK", T),
    _p("django filter", "{{ 7|add:42 }} MARK", T),
    _p("django csrf tag", "{% csrf_token %} MARK", T),
    _p("django templatetag", "{% templatetag openblock %} MARK", T),
    _p("jinja and js templates", "{{ 7*7 }} ${7*7} #{7*7} {{constructor.constructor('window.__xss=NUM')()}} MARK"),
    # htmx attributes: a stored fragment must never make htmx fetch, swap or run anything.
    _p("hx-get on load", '<div hx-get="/api/v1/me" hx-trigger="load" data-xss="MARK">x</div>', H),
    _p("hx-post logout", '<button hx-post="/accounts/logout/" hx-trigger="load" data-xss="MARK">x</button>', H),
    _p("hx-on load", '<div hx-on::load="window.__xss=NUM" data-xss="MARK">x</div>', H),
    _p("hx-on htmx event", '<div hx-on:htmx:load="window.__xss=NUM" data-xss="MARK">x</div>', H),
    _p("hx attribute injection", '" hx-get="/api/v1/me" hx-trigger="load" data-xss="MARK', A),
    _p("hx-vals js", '<div hx-vals=\'js:{a: window.__xss=NUM}\' hx-get="/" hx-trigger="load" id="MARK">x</div>', H),
    _p("ws-connect", '<div hx-ext="ws" ws-connect="/ws/studio/" data-xss="MARK">x</div>', H),
    # Frames, SVG, MathML, templates and mutation XSS.
    _p("iframe srcdoc", '<iframe srcdoc="&lt;script&gt;parent.__xss=NUM&lt;/script&gt;" name="MARK"></iframe>', H),
    _p(
        "math mglyph mxss",
        '<math><mtext><table><mglyph><style><img src=x onerror="window.__xss=NUM" alt="MARK"></style></mglyph></table>',
        H,
    ),
    _p("template element", '<template><img src=x onerror="window.__xss=NUM" alt="MARK"></template>', H),
    _p("noscript mxss", '<noscript><p title="</noscript><img src=x onerror=window.__xss=NUM alt=MARK>">', H),
    _p("svg style mxss", '<svg><style><img src=x onerror="window.__xss=NUM" alt="MARK"></style></svg>', H),
    _p("comment mxss", '<!--<img src="--><img src=x onerror="window.__xss=NUM" alt="MARK">-->', H),
    _p("cdata", '<![CDATA[<img src=x onerror="window.__xss=NUM" alt="MARK">]]>', H),
    # Styles.
    _p("style expression", '<div style="width:expression(window.__xss=NUM)" data-xss="MARK">x</div>', H),
    _p("style tag", "<style>body{background:url(javascript:window.__xss=NUM)} /*MARK*/</style>", H),
    _p("style attribute injection", '" style="background:url(javascript:window.__xss=NUM)" data-xss="MARK', A),
    # Breaking out of RCDATA and raw-text elements.
    _p("textarea breakout", '</textarea><img src=x onerror="window.__xss=NUM" alt="MARK">', H, R),
    _p("title breakout", '</title><img src=x onerror="window.__xss=NUM" alt="MARK">', H, R),
    _p("style breakout", '</style><img src=x onerror="window.__xss=NUM" alt="MARK">', H),
    # Unicode and encoding tricks.
    _p("fullwidth script", "\uff1cscript\uff1ewindow.__xss=NUM\uff1c/script\uff1e MARK"),
    _p("rtl override", '\u202e<b data-xss="MARK">gnp.exe</b>', H),
    _p("zero-width javascript", "java\u200bscript:window.__xss=NUM//MARK", U),
    _p("zero-width link", '<a href="java\u200bscript:window.__xss=NUM//MARK">open</a>', H),
    _p("pre-escaped entities", "&lt;script&gt;window.__xss=NUM&lt;/script&gt; &amp;lt;MARK"),
    _p("url-encoded script", "%3Cscript%3Ewindow.__xss=NUM%3C/script%3E MARK"),
    _p("js unicode escapes", "\\u003cscript\\u003ewindow.__xss=NUM\\u003c/script\\u003e MARK"),
    _p("js string breakout", "';window.__xss=NUM;//\";window.__xss=NUM;// MARK"),
    _p(
        "null byte", '<scr\x00ipt>/*MARK*/window.__xss=NUM</script><img src=x onerror="window.__xss=NUM" alt="MARK">', H
    ),
)


def storable(n: int) -> bool:
    """PostgreSQL text cannot hold NUL: forms refuse that payload, and rows written directly skip it."""
    return "\x00" not in PAYLOADS[n].template


def payload_text(n: int, slot: str) -> str:
    """Payload ``n`` with its marker for one use (``slot``)."""
    return PAYLOADS[n].template.replace("MARK", f"{MARKER_PREFIX}{n}-{slot}").replace("NUM", str(n))
