"""Security headers: the Content-Security-Policy on every page, the production headers (HSTS,
secure cookies, frame and sniffing protections) under production settings, and templates that
hold nothing the policy would block.

Each gate has a self-test that feeds it something broken and expects it to fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.http import HttpResponse

from tests.test_settings import PROD_ENV, run_manage

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "connect-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = set(words[1:])
    return directives


def assert_strict_csp(response: HttpResponse) -> None:
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    directives = parse_csp(header)
    for name, sources in EXPECTED_CSP.items():
        assert directives.get(name) == sources, f"{name}: {directives.get(name)} != {sources}"
    assert "unsafe-inline" not in header and "unsafe-eval" not in header, header


def assert_page_headers(response: HttpResponse) -> None:
    assert_strict_csp(response)
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin"


def test_pages_carry_the_strict_policy(client, client_for, world):
    assert_page_headers(client.get("/accounts/login/"))
    member = client_for(world.owner)
    for url in ["/", "/studio/", "/settings/agency/", "/notifications/", "/settings/api-tokens/"]:
        response = member.get(url)
        assert response.status_code == 200, url
        assert_page_headers(response)


def test_a_broken_header_fails_the_gate():
    good = {
        "Content-Security-Policy": "; ".join(f"{k} {' '.join(sorted(v))}" for k, v in EXPECTED_CSP.items()),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    assert_page_headers(HttpResponse(headers=good))
    unsafe = good["Content-Security-Policy"].replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
    for broken in [
        {**good, "Content-Security-Policy": unsafe},
        {**good, "X-Frame-Options": "SAMEORIGIN"},
        {k: v for k, v in good.items() if k != "Content-Security-Policy"},
    ]:
        with pytest.raises(AssertionError):
            assert_page_headers(HttpResponse(headers=broken))


def test_admin_may_use_inline_styles_but_never_inline_scripts(admin_client):
    response = admin_client.get("/admin/accounts/user/")
    assert response.status_code == 200
    directives = parse_csp(response.headers["Content-Security-Policy"])
    assert directives["style-src"] == {"'self'", "'unsafe-inline'"}
    assert directives["script-src"] == {"'self'"}


# --- templates hold nothing the policy would block -------------------------------------------

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "inline <style>"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on*= event handler"),
    (re.compile(r"\s(?:data-)?hx-on", re.I), "hx-on attribute (needs eval)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"""hx-vals\s*=\s*['"]\s*js:""", re.I), "hx-vals js: (needs eval)"),
]


def inline_code(text: str) -> list[str]:
    return [label for pattern, label in INLINE if pattern.search(text)]


def test_no_template_holds_inline_script_or_style():
    found = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        problems = inline_code(path.read_text())
        if problems:
            found[str(path.relative_to(ROOT))] = problems
    assert not found, found


@pytest.mark.parametrize(
    "snippet",
    [
        "<script>alert(1)</script>",
        '<div style="color:red">',
        '<select onchange="this.form.submit()">',
        '<button hx-on:click="alert(1)">',
        "<style>p{}</style>",
        '<a href="javascript:alert(1)">',
    ],
)
def test_the_template_scan_catches_inline_code(snippet):
    assert inline_code(snippet)


def test_the_template_scan_allows_external_scripts():
    assert not inline_code('<script src="/static/js/app.js" defer></script><link rel="stylesheet" href="x.css">')


# --- production settings ---------------------------------------------------------------------

PROBE = """
import json
from django.conf import settings
from django.test import Client
client = Client()
https = client.get("/api/v1/me", secure=True, HTTP_HOST="huntaze.example.com")
http = client.get("/api/v1/me", HTTP_HOST="huntaze.example.com")
print(json.dumps({
    "https_status": https.status_code,
    "https": dict(https.headers),
    "http_status": http.status_code,
    "http_location": http.headers.get("Location"),
    "settings": {name: getattr(settings, name) for name in [
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
        "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT", "X_FRAME_OPTIONS",
    ]},
}))
"""


def test_production_settings_send_hsts_and_redirect_to_https(tmp_path):
    result = run_manage("shell", "-c", PROBE, env=PROD_ENV, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    headers = data["https"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert parse_csp(headers["Content-Security-Policy"])["frame-ancestors"] == {"'none'"}
    assert data["http_status"] == 301
    assert data["http_location"] == "https://huntaze.example.com/api/v1/me"
    assert data["settings"] == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "X_FRAME_OPTIONS": "DENY",
    }


def test_hsts_switches_are_read_from_the_environment(tmp_path):
    env = {**PROD_ENV, "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false", "SECURE_HSTS_PRELOAD": "false"}
    result = run_manage("shell", "-c", PROBE, env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout.strip().splitlines()[-1])["https"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
