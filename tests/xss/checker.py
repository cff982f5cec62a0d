"""What the XSS gate looks for in a page or an API answer (issue 17, item 5).

``scan_html`` parses a page with the standard library's HTML parser, the way a browser builds
elements and attributes (no JavaScript), and reports every place where text from the corpus
(tests/xss/payloads.py) became markup instead of text:

- an attribute name, a tag name or a comment holding a marker;
- an attribute value holding a marker that is not a faithful copy of its whole payload (the
  payload's own ``alt="MARK"`` or ``onerror=…`` parts), or that is faithful but in a place where
  the browser would run or fetch it: event handlers, ``style``, ``srcdoc``, htmx (``hx-*``,
  ``ws-*``) attributes, or a URL attribute whose scheme is ``javascript:``/``data:``/``vbscript:``;
- a ``<script>`` or ``<style>`` whose content holds a marker (JSON in ``json_script`` excepted).

It also says which markers were *shown*: their whole payload appears verbatim (whitespace aside)
as text or as a plain attribute value such as an input's ``value``. The gate requires every
payload to be shown somewhere, so it cannot pass because nothing was stored or rendered, and a
template payload that a page evaluated (``{{ … }}`` rendered as its value) is not shown.

``scan_json`` checks an API answer: strings that carry a marker are data, returned verbatim, never
HTML-escaped.

Deliberately not here: running scripts (the browser sample in tests/e2e/test_xss.py does that).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote_plus

from tests.xss.payloads import MARKER, MARKER_PREFIX, PAYLOADS, payload_text

URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "codebase", "cite",
    "manifest", "icon", "ping",
}  # fmt: skip
ACTIVE_ATTRIBUTES = {"style", "srcdoc", "content", "http-equiv"}
ACTIVE_PREFIXES = ("on", "hx-", "data-hx-", "ws-", "sse-")
INVISIBLE = re.compile(r"[\x00-\x20\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
DANGEROUS_SCHEME = re.compile(r"^(javascript|vbscript|data):", re.IGNORECASE)
HTML_ENTITY = re.compile(r"&(lt|gt|quot|amp|#x?[0-9a-f]+);", re.IGNORECASE)


CUT_MARKER = re.compile(re.escape(MARKER_PREFIX) + r"\d*-?$")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def faithful(text: str) -> bool:
    """True when every marker in ``text`` comes with its whole payload around it (whitespace and
    letter case aside: fan tags are kept lowercase), or ``text`` is the payload cut short (a search
    box keeps its first 80 characters); either as it is or URL-decoded (a ``next`` field holding
    the page's own query string)."""
    for candidate in (text, unquote_plus(text)):
        squashed = _squash(candidate).lower()
        payloads = [_squash(payload_text(int(n), slot)).lower() for n, slot in MARKER.findall(candidate)]
        if payloads and all(p in squashed or p.startswith(squashed) for p in payloads):
            return True
        # Cut inside its only marker ("…xss-17-" or "…xss-17-3"): still the start of one payload.
        cut_marker = not payloads and CUT_MARKER.search(squashed)
        if cut_marker and any(_squash(payload_text(n, "0")).lower().startswith(squashed) for n in range(len(PAYLOADS))):
            return True
    return False


@dataclass
class Scan:
    findings: list[str] = field(default_factory=list)
    shown: set[str] = field(default_factory=set)  # markers whose whole payload was shown as text
    seen: set[str] = field(default_factory=set)  # every marker on the page, in any form


class _Parser(HTMLParser):
    def __init__(self, scan: Scan) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = scan
        self.raw: list[tuple[str, dict[str, str]]] = []  # open script/style elements
        self.text: list[str] = []

    def _report(self, what: str, text: str) -> None:
        self.scan.findings.append(f"{what}: {text[:160]!r}")

    def _note(self, text: str) -> None:
        for n, slot in MARKER.findall(text):
            self.scan.seen.add(f"{MARKER_PREFIX}{n}-{slot}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)
        if tag in ("script", "style"):
            self.raw.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if MARKER_PREFIX in tag:
            self._report(f"<{tag}> tag from a payload", tag)
        for name, value in attrs:
            value = value or ""
            self._note(name + " " + value)
            if MARKER_PREFIX in name:
                self._report(f"<{tag}> attribute name from a payload", f"{name}={value}")
            if MARKER_PREFIX not in value:
                continue
            if name.startswith(ACTIVE_PREFIXES) or name in ACTIVE_ATTRIBUTES:
                self._report(f"<{tag} {name}> holds payload text the browser would act on", value)
            elif name in URL_ATTRIBUTES and DANGEROUS_SCHEME.match(INVISIBLE.sub("", value)):
                self._report(f"<{tag} {name}> is a {value.split(':')[0]}: URL from a payload", value)
            elif not faithful(value):
                self._report(f"<{tag} {name}> attribute from a payload", value)
            else:
                self._shown(value)

    def handle_endtag(self, tag: str) -> None:
        if self.raw and self.raw[-1][0] == tag:
            self.raw.pop()

    def handle_data(self, data: str) -> None:
        self._note(data)
        if self.raw:
            tag, attrs = self.raw[-1]
            if MARKER_PREFIX in data and not (tag == "script" and _is_json(attrs, data)):
                self._report(f"<{tag}> content from a payload", data)
            return
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self._note(data)
        if MARKER_PREFIX in data:
            self._report("comment from a payload", data)

    def handle_pi(self, data: str) -> None:
        self.handle_comment(data)

    def unknown_decl(self, data: str) -> None:
        self.handle_comment(data)

    def _shown(self, text: str) -> None:
        squashed = _squash(text)
        for n, slot in MARKER.findall(text):
            if _squash(payload_text(int(n), slot)) in squashed:
                self.scan.shown.add(f"{MARKER_PREFIX}{n}-{slot}")

    def close(self) -> None:
        super().close()
        self._shown("\n".join(self.text))


def _is_json(attrs: dict[str, str], data: str) -> bool:
    if attrs.get("type", "").lower() != "application/json":
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def scan_html(html: str) -> Scan:
    scan = Scan()
    parser = _Parser(scan)
    parser.feed(html)
    parser.close()
    return scan


def scan_json(data, sent: dict[str, str] | None = None) -> Scan:
    """Every string holding a marker must be data: not HTML-escaped, and a whole sent value comes
    back whole. ``sent`` maps top-level fields to what the request sent (compared when echoed)."""
    scan = Scan()

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, str) and MARKER_PREFIX in value:
            originals = {f"{MARKER_PREFIX}{n}-{slot}": payload_text(int(n), slot) for n, slot in MARKER.findall(value)}
            scan.seen.update(originals)
            extra = set(HTML_ENTITY.findall(value)) - {e for o in originals.values() for e in HTML_ENTITY.findall(o)}
            if extra:
                scan.findings.append(f"{path}: HTML-escaped in JSON ({sorted(extra)}): {value[:160]!r}")
                return
            scan.shown.update(marker for marker, original in originals.items() if original in value)

    walk(data, "")
    for key, value in (sent or {}).items():
        echoed = data.get(key) if isinstance(data, dict) else None
        if isinstance(echoed, str) and echoed not in (value, value.strip()):
            scan.findings.append(f"{key}: sent {value[:80]!r}, answered {echoed[:80]!r}")
    return scan
