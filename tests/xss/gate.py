"""The XSS gate's walker: store the corpus through every form and API field, then read every page.

Forms are found, not listed: every GET page of the URL resolver (the cross-tenant walk's routes,
with its registered URL kwargs filled from ``objects``, plus the links a page makes to itself with
another query string, such as the studio's ``?type=`` tabs) is fetched by the owner and by an
anonymous visitor, and each ``<form>`` with a field a person types into (text, search, textarea,
email, url, password, tel, file) is submitted:

1. ``ROUNDS`` times with a payload in every typed field and valid values elsewhere; a field the
   form refuses (its ``id_<name>_error`` list) is refilled with a plain valid value and the form
   sent again, so the other fields' payloads are stored. Each form's fields take the corpus in
   turn from a per-form offset: a form with ``f`` typed fields stores ``ROUNDS * f`` payloads.
2. once more with a payload in every field, hidden ones, selects and numbers included (what a
   tampered request sends), to check that error pages echo them escaped.

The API is found the same way: every POST, PUT and PATCH of /api/v1/openapi.json gets payloads in
its string properties (nested objects and arrays included), ``ROUNDS`` times, with the same retry
for fields the API refuses; GETs get payloads in their string query parameters.

Every answer to every request is scanned (tests/xss/checker.py), and so is every page afterwards,
for the owner and for a chatter, as a full page and as an htmx fragment. Rows no form writes (a
notification's title, a generation's text, an idea's title) are filled in place by
``seed_stored_text`` before that last sweep.

Runtime: about 1,000 requests, 25-40 s. Each payload reaches pages through several fields, not
through every field: the per-form rotation above spreads the corpus, and the test requires every
field to take at least three payloads and every payload to be shown escaped on some page and
returned verbatim by some API answer.

Not here: the browser (tests/e2e/test_xss.py) and text a model writes, streamed over the studio
websocket (tests/xss/test_gate.py, with the loopback model fake).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client

from tests.test_cross_tenant import PARAM, all_routes
from tests.xss.checker import Scan, scan_html, scan_json
from tests.xss.payloads import MARKER_PREFIX, PAYLOADS, payload_text, storable

ROUNDS = 6
API_ROUNDS = 4
TYPED = {"text", "search", "textarea", "email", "url", "password", "tel", "file"}
LINKS_PER_PAGE = 8
VARYING = {"csrfmiddlewaretoken", "next"}
# Plain values for a field that refuses a payload, by input type.
VALID = {
    "email": "plain-{slot}@example.com",
    "url": "https://example.com/{slot}",
    "password": "A-long-plain-passphrase-{slot}",
}
# API string properties that name a choice without declaring an enum: a valid value for the retry.
API_VALID = {"type": "caption", "email": "plain-{slot}@example.com", "timezone": "UTC"}
# Open objects (``additionalProperties``) the service reads known keys from.
API_OPEN_OBJECT_KEYS = {"fan": ("display_name", "notes")}
# Model text that is not free text: set by code, or validated where it is used.
NOT_FREE_TEXT = {
    "timezone", "currency", "prefix", "token_hash", "fingerprint", "key", "request_id", "price_version",
    "error_kind", "password", "media_type", "provider", "model", "feature", "azure_api_version",
    "url",  # a notification's link: set by code to one of our own pages, never by a member
    "last_message_direction",  # a conversation's copy of its last message's "in" or "out"
    "subreddit",  # a Reddit community name (letters, digits, underscores; 2-21), checked by the form
}  # fmt: skip


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    shown_html: set[str] = field(default_factory=set)
    shown_json: set[str] = field(default_factory=set)
    stored: dict[str, set[int]] = field(default_factory=dict)  # field -> payload numbers sent
    pages: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    errors: list[str] = field(default_factory=list)  # answers of 500 and above
    seconds: float = 0.0

    def add(self, where: str, scan: Scan, *, json_answer: bool = False) -> None:
        self.findings.extend(f"{where}: {finding}" for finding in scan.findings)
        (self.shown_json if json_answer else self.shown_html).update(scan.shown)

    def payloads_shown(self, *, json_answer: bool = False) -> set[int]:
        shown = self.shown_json if json_answer else self.shown_html
        return {int(marker[len(MARKER_PREFIX) :].split("-")[0]) for marker in shown}


class Slots:
    """Unique slot ids, so each stored payload can be traced to one field and one request."""

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def next(self) -> str:
        return format(next(self._count), "x")


# --- Forms -----------------------------------------------------------------------------------


@dataclass
class Control:
    name: str
    kind: str  # input type, "textarea" or "select"
    value: str = ""
    options: list[str] = field(default_factory=list)
    checked: bool = False


@dataclass
class Form:
    page: str
    method: str
    action: str
    controls: list[Control]

    @property
    def key(self) -> str:
        # Hidden values that pick a form (the studio's type) tell forms apart; ``next`` does not.
        fixed = sorted(f"{c.name}={c.value}" for c in self.controls if c.kind == "hidden" and c.name not in VARYING)
        names = sorted({c.name for c in self.controls})
        return f"{self.method.upper()} {urlsplit(self.action).path} {names} {fixed}"

    @property
    def typed(self) -> list[Control]:
        return [c for c in self.controls if c.kind in TYPED]


class _FormParser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._textarea: Control | None = None
        self._select: Control | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(urljoin(self.page, a["href"]))
        if tag == "form":
            action = urljoin(self.page, a.get("action") or self.page)
            self._form = Form(self.page, a.get("method", "get").lower(), action, [])
            self.forms.append(self._form)
            return
        if self._form is None or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button", "reset", "image"):
            self._form.controls.append(
                Control(a["name"], a.get("type", "text").lower(), a.get("value", ""), checked="checked" in a)
            )
        elif tag == "textarea" and a.get("name"):
            self._textarea = Control(a["name"], "textarea")
            self._form.controls.append(self._textarea)
        elif tag == "select" and a.get("name"):
            self._select = Control(a["name"], "select")
            self._form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))
            if "selected" in a or not self._select.value:
                self._select.value = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def parse_page(url: str, html: str) -> tuple[list[Form], list[str]]:
    parser = _FormParser(url)
    parser.feed(html)
    parser.close()
    return parser.forms, parser.links


def _field_errors(html: str) -> set[str]:
    return set(re.findall(r'<ul class="errorlist" id="id_([\w-]+)_error"', html))


def _csv_upload(text: str) -> SimpleUploadedFile:
    """A post-history CSV (docs/studio-data.md) whose free-text columns carry the payload."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["platform", "posted_at", "category", "caption", "tags", "external_id"])
    writer.writerow(["onlyfans", "2026-01-05T20:00:00Z", "photo", text, text, text[:100]])
    writer.writerow(["onlyfans", "not a date " + text, "photo", text, "", ""])
    return SimpleUploadedFile(f"{text[:40]}.csv", buffer.getvalue().encode(), content_type="text/csv")


class FormWalker:
    def __init__(self, report: Report, slots: Slots, reset_session=None) -> None:
        self.report = report
        self.slots = slots
        self.reset_session = reset_session or (lambda client: None)

    def fetch(self, client: Client, method: str, url: str, where: str, **kwargs):
        response = getattr(client, method)(url, follow=True, **kwargs)
        self.report.requests += 1 + len(response.redirect_chain)
        final = response.request["PATH_INFO"]
        if response.status_code >= 500:
            self.report.errors.append(f"{where}: {method.upper()} {url} -> {response.status_code}")
        content_type = response.get("Content-Type", "")
        body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) else ""
        if "html" in content_type:
            self.report.add(f"{where} ({method.upper()} {url} -> {final})", scan_html(body))
        elif "json" in content_type and body:
            self.report.add(f"{where} ({method.upper()} {url})", scan_json(json.loads(body)), json_answer=True)
        elif MARKER_PREFIX in body:
            self.report.findings.append(f"{where} ({method.upper()} {url}): payload in a {content_type!r} answer")
        return response, body

    def discover(self, client: Client, urls: list[str]) -> list[Form]:
        """The forms with a typed field on the given pages and on their same-path query links."""
        forms: dict[str, Form] = {}
        queue, seen = list(urls), set()
        variants: dict[str, int] = {}  # query variants queued per path: a calendar's "next month" never ends
        while queue:
            url = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            response, body = self.fetch(client, "get", url, "page")
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            self.report.pages.add(url)
            query = response.request.get("QUERY_STRING", "")
            url = response.request["PATH_INFO"] + (f"?{query}" if query else "")  # where a redirect led
            page_forms, links = parse_page(url, body)
            for form in page_forms:
                if form.typed and "logout" not in form.action:
                    forms.setdefault(form.key, form)
            path = urlsplit(url).path
            same = [link for link in links if urlsplit(link).path == path and urlsplit(link).query]
            for link in same[:LINKS_PER_PAGE]:
                if "page=" not in urlsplit(link).query and variants.get(path, 0) < LINKS_PER_PAGE:
                    variants[path] = variants.get(path, 0) + 1
                    queue.append(urlsplit(link).path + "?" + urlsplit(link).query)
        return list(forms.values())

    def submit_rounds(self, client_factory, form: Form, offset: int) -> None:
        typed = form.typed
        for round_number in range(ROUNDS):
            values = {}
            for index, control in enumerate(typed):
                n = (offset + round_number * len(typed) + index) % len(PAYLOADS)
                values[control.name] = (n, self.slots.next())
            self._submit(client_factory(), form, values, tamper=False)
        every = {}
        for index, control in enumerate(form.controls):
            if control.name != "csrfmiddlewaretoken":
                every[control.name] = ((offset + index) % len(PAYLOADS), self.slots.next())
        self._submit(client_factory(), form, every, tamper=True)

    def _data(self, form: Form, current: Form, payloads: dict, plain: set[str], *, tamper: bool) -> dict:
        data: dict = {}
        for control in current.controls:
            name = control.name
            slot_payload = payloads.get(name)
            if name in plain or slot_payload is None:
                if control.kind in ("checkbox", "radio"):
                    if control.checked or (control.kind == "radio" and name not in data):
                        data.setdefault(name, []).append(control.value or "on")
                    continue
                if control.kind == "file":
                    continue
                value = control.value
                if not value and control.kind in VALID:
                    value = VALID[control.kind].format(slot=self.slots.next())
                if not value and control.kind in TYPED:
                    value = f"Plain text {self.slots.next()}"
                if not value and control.kind == "number":
                    value = "1"
                data.setdefault(name, []).append(value)
                continue
            n, slot = slot_payload
            text = payload_text(n, slot)
            label = f"{'tampered ' if tamper else ''}{form.key.split(' [')[0]} {name}"
            self.report.stored.setdefault(label, set()).add(n)
            data.setdefault(name, []).append(_csv_upload(text) if control.kind == "file" else text)
        return {key: value if len(value) > 1 else value[0] for key, value in data.items()}

    def _submit(self, client: Client, form: Form, payloads: dict, *, tamper: bool) -> None:
        where = f"form {form.key}" + (" (tampered)" if tamper else "")
        _response, body = self.fetch(client, "get", form.page, where)
        current = next((f for f in parse_page(form.page, body)[0] if f.key == form.key), form)
        self.report.forms.add(form.key)
        plain: set[str] = set()
        for _attempt in range(2):
            data = self._data(form, current, payloads, plain, tamper=tamper)
            if form.method == "get":
                query = urlencode([(k, v) for k, vs in data.items() for v in (vs if isinstance(vs, list) else [vs])])
                _response, body = self.fetch(client, "get", f"{urlsplit(form.action).path}?{query}", where)
            else:
                _response, body = self.fetch(client, "post", form.action, where, data=data)
            self.reset_session(client)
            refused = (_field_errors(body) & set(payloads)) - plain
            if tamper or not refused:
                return
            plain |= refused


# --- API ---------------------------------------------------------------------------------------


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], components)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _resolve(options[0], components) if options else schema
    return schema


class ApiWalker:
    def __init__(self, report: Report, slots: Slots, client: Client, objects: dict) -> None:
        self.report = report
        self.slots = slots
        self.client = client
        self.objects = objects
        self.schema = client.get("/api/v1/openapi.json").json()
        self.components = self.schema.get("components", {}).get("schemas", {})
        self.counter = itertools.count()

    def _payload(self, name: str) -> str:
        n = next(self.counter) % len(PAYLOADS)
        self.report.stored.setdefault(f"api {name}", set()).add(n)
        return payload_text(n, self.slots.next())

    def _value(self, name: str, schema: dict, plain: set[str], path: str):
        schema = _resolve(schema, self.components)
        kind = schema.get("type")
        if "enum" in schema:
            return schema["enum"][0]
        if kind == "object":
            properties = schema.get("properties", {})
            if not properties:
                return {key: self._payload(f"{path}.{key}") for key in API_OPEN_OBJECT_KEYS.get(name, ())}
            return {
                key: self._value(key, sub, plain, f"{path}.{key}" if path else key) for key, sub in properties.items()
            }
        if kind == "array":
            items = _resolve(schema.get("items", {}), self.components)
            return [self._value(name, items, plain, path)] if items.get("type") == "string" else []
        if kind == "string":
            if path in plain:
                if "default" in schema:
                    return schema["default"]
                return API_VALID.get(name, "Plain text").format(slot=self.slots.next())
            return self._payload(path)
        if kind == "integer":
            return self.objects.get(name, schema.get("default", schema.get("minimum", 1)))
        if kind == "number":
            return schema.get("default", 10)
        if kind == "boolean":
            return schema.get("default", True)
        return schema.get("default")

    def _has_strings(self, schema: dict) -> bool:
        schema = _resolve(schema, self.components)
        if schema.get("type") == "string" and "enum" not in schema:
            return True
        children = [*schema.get("properties", {}).values(), schema.get("items", {})]
        return (schema.get("type") == "object" and not schema.get("properties")) or any(
            self._has_strings(child) for child in children if child
        )

    def _path(self, path: str) -> str:
        return re.sub(r"{(\w+)}", lambda m: str(self.objects[m.group(1)]), path)

    def walk_writes(self) -> None:
        for path, operations in self.schema["paths"].items():
            for method, operation in operations.items():
                content = (operation.get("requestBody") or {}).get("content", {})
                if method not in ("post", "put", "patch") or "application/json" not in content:
                    continue
                body_schema = content["application/json"]["schema"]
                if not self._has_strings(body_schema):
                    continue  # archive, favourite, role: nothing typed to store, only side effects
                self.report.operations.add(f"{method.upper()} {path}")
                for _round in range(API_ROUNDS):
                    plain: set[str] = set()
                    for _attempt in range(8):
                        body = self._value("", body_schema, plain, "")
                        answer = self._call(method, self._path(path), body)
                        error = (answer or {}).get("error")
                        fields = set(error.get("fields") or {} if isinstance(error, dict) else {}) - plain
                        if not fields:
                            break
                        plain |= fields

    def walk_reads(self, *, rounds: int = 1) -> None:
        for path, operations in self.schema["paths"].items():
            operation = operations.get("get")
            if operation is None:
                continue
            self.report.operations.add(f"GET {path}")
            query = {}
            for parameter in operation.get("parameters", []):
                schema = _resolve(parameter.get("schema", {}), self.components)
                if parameter["in"] == "query" and schema.get("type") == "string" and "enum" not in schema:
                    query[parameter["name"]] = ""
            url = self._path(path)
            self._call("get", url, None)
            for _round in range(rounds if query else 0):
                query = {name: self._payload(f"{path}?{name}") for name in query}
                self._call("get", f"{url}?{urlencode(query)}", None)

    def _call(self, method: str, url: str, body):
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        response = getattr(self.client, method)(url, **kwargs)
        self.report.requests += 1
        where = f"api {method.upper()} {url}"
        if response.status_code >= 500 and response.status_code != 502:
            self.report.errors.append(f"{where} -> {response.status_code}")
        content_type = response.get("Content-Type", "")
        if getattr(response, "streaming", False):
            text = _read_stream(response.streaming_content).decode(errors="replace")
            for line in text.splitlines():
                if line.startswith("data: "):
                    self.report.add(where, scan_json(json.loads(line[6:])), json_answer=True)
            return None
        raw = response.content.decode(errors="replace")
        if "json" not in content_type:
            if MARKER_PREFIX in raw:
                self.report.findings.append(f"{where}: payload in a {content_type!r} answer")
            return None
        answer = json.loads(raw) if raw else None
        sent = {k: v for k, v in (body or {}).items() if isinstance(v, str)}
        self.report.add(where, scan_json(answer, sent if response.status_code < 300 else None), json_answer=True)
        return answer if isinstance(answer, dict) else None


def _read_stream(content) -> bytes:
    if not hasattr(content, "__aiter__"):
        return b"".join(content)

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in content])

    return async_to_sync(collect)()


# --- Stored text no form writes ----------------------------------------------------------------


def _replace_strings(value, make):
    if isinstance(value, str):
        return make()
    if isinstance(value, list):
        return [_replace_strings(item, make) for item in value]
    if isinstance(value, dict):
        return {key: _replace_strings(item, make) for key, item in value.items()}
    return value


def seed_stored_text(agency_id: int, report: Report, slots: Slots) -> int:
    """Every free-text column of the agency's rows (every app's tenant models) gets a payload."""
    from django.apps import apps

    counter = itertools.count(7)
    rows = 0

    def make(label: str):
        def _make() -> str:
            n = next(counter) % len(PAYLOADS)
            while not storable(n):
                n = next(counter) % len(PAYLOADS)
            report.stored.setdefault(f"stored {label}", set()).add(n)
            return payload_text(n, slots.next())

        return _make

    for model in apps.get_models():
        if not model.__module__.startswith("apps.") or "agency" not in {f.name for f in model._meta.fields}:
            continue
        text_fields = [
            f
            for f in model._meta.fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
            and not isinstance(f, models.EmailField | models.URLField)
            and not f.choices
            and f.name not in NOT_FREE_TEXT
            and type(f).__module__.startswith("django.")
        ]
        if not text_fields:
            continue
        for row in model._default_manager.filter(agency_id=agency_id):
            for f in text_fields:
                label = f"{model.__name__}.{f.name}"
                current = getattr(row, f.name)
                if isinstance(f, models.JSONField):
                    setattr(row, f.name, _replace_strings(current, make(label)))
                else:
                    limit = f.max_length or 10_000
                    text = make(label)()
                    tries = 1
                    while len(text) > limit:
                        # A column too short for every payload is not free text: say so rather than spin.
                        assert tries < len(PAYLOADS), f"no payload fits {label} ({limit} characters): NOT_FREE_TEXT?"
                        text = make(label)()
                        tries += 1
                    setattr(row, f.name, text)
            row.save(update_fields=[f.name for f in text_fields])
            rows += 1
    return rows


# --- The sweep ---------------------------------------------------------------------------------


def page_urls(objects: dict, overrides: dict[str, dict] | None = None) -> list[str]:
    """Every GET-able page of the resolver (the API excepted), with registered kwargs filled."""
    urls = []
    for route, name in all_routes():
        if route.startswith("api/"):
            continue
        values = {**objects, **(overrides or {}).get(name, {})}
        urls.append("/" + PARAM.sub(lambda m, v=values: str(v[m.group("name")]), route))
    return urls


def sweep(walker: FormWalker, client: Client, urls: list[str], who: str) -> None:
    for url in urls:
        response, body = walker.fetch(client, "get", url, f"sweep as {who}")
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            walker.report.pages.add(url)
            walker.fetch(client, "get", url, f"sweep as {who} (htmx)", HTTP_HX_REQUEST="true")
            _forms, links = parse_page(url, body)
            path = urlsplit(url).path
            for link in [link for link in links if urlsplit(link).path == path and urlsplit(link).query][
                :LINKS_PER_PAGE
            ]:
                walker.fetch(client, "get", path + "?" + urlencode(parse_qsl(urlsplit(link).query)), f"sweep as {who}")
