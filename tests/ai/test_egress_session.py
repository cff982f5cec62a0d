# ruff: noqa: F811 (pytest fixtures imported from tests/fakes/resolver.py)
"""apps/ai/egress.py's ``guarded_session``: the synchronous HTTP client of every outside URL a
member types (CRM webhooks, publishing media, third-party API providers) resolves a host once,
checks every address, and connects to exactly what it checked, with the host name kept for the
Host header, SNI and the certificate.

Host names are scripted by tests/fakes/resolver.py; the only server is on 127.0.0.1, and any
connection to another address fails the test (``loopback_only``).
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.ai import egress
from tests.fakes.resolver import loopback_only, resolver  # noqa: F401 (fixtures)

HOST = "api.rebind.test"
PUBLIC = "93.184.216.34"  # only ever given to a check, never connected to


class Receiver:
    """A loopback HTTP(S) server recording the Host header (and the TLS server name) of each request."""

    def __init__(self, tls_name: str | None = None, tmp_path=None) -> None:
        self.hosts: list[str] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                receiver.hosts.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.cafile = None
        if tls_name:
            self.cafile = _certificate(tls_name, tmp_path)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
            context.sni_callback = lambda sock, name, ctx: receiver.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _certificate(name: str, directory) -> str:
    """A self-signed certificate for ``name`` (its own CA); answers the CA file's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(directory / "cert.pem")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def _session(*, allow_private: bool) -> requests.Session:
    return egress.guarded_session(egress.policy_check(lambda: allow_private))


def test_the_name_is_resolved_once_and_the_checked_address_connected_to(resolver, receiver):
    resolver.answer(HOST, "127.0.0.1")
    with _session(allow_private=True) as session:
        response = session.get(f"http://{HOST}:{receiver.port}/hook", allow_redirects=False, timeout=5)
    assert response.status_code == 200 and response.text == "ok"
    assert resolver.lookups == [HOST]  # no second resolution by the HTTP client
    assert receiver.hosts == [f"{HOST}:{receiver.port}"]  # the Host header keeps the name


def test_dns_rebinding_is_refused_before_any_connection(resolver, receiver):
    """Public when checked, loopback when connected: a client that resolves the name again (what
    CRM webhooks, media downloads and the API connector used to do) reaches the server."""
    url = f"http://{HOST}:{receiver.port}/hook"
    resolver.answer(HOST, PUBLIC, "127.0.0.1")
    egress.check_url(url, allow_private=False)  # the check sees the public answer and passes
    with requests.Session() as plain:
        plain.trust_env = False
        assert plain.get(url, timeout=5).status_code == 200
    assert len(receiver.hosts) == 1  # the bug, shown on loopback: the check was bypassed

    resolver.answer(HOST, PUBLIC, "127.0.0.1")
    egress.check_url(url, allow_private=False)
    with _session(allow_private=False) as session, pytest.raises(egress.RefusedURL, match="private or internal"):
        session.get(url, allow_redirects=False, timeout=5)
    assert len(receiver.hosts) == 1  # nothing more arrived
    assert resolver.lookups.count(HOST) == 4


def test_the_connection_goes_to_the_address_it_checked_not_to_a_later_answer(resolver, receiver):
    """The first answer is public and passes; the second would be loopback. The connection is
    aimed at the first (refused by the test before any packet leaves), never resolved again."""
    resolver.answer(HOST, PUBLIC, "127.0.0.1")
    resolver.unreachable.add(PUBLIC)
    with _session(allow_private=False) as session, pytest.raises(requests.ConnectionError):
        session.get(f"http://{HOST}:{receiver.port}/", allow_redirects=False, timeout=5)
    assert resolver.connects == [PUBLIC] and resolver.lookups == [HOST] and receiver.hosts == []


def test_one_refused_address_refuses_the_host(resolver, receiver):
    resolver.answer(HOST, ["127.0.0.1", "10.1.2.3"])

    def loopback_but_not_private(address) -> None:
        if not address.is_loopback:
            egress.policy_check(lambda: False)(address)

    with egress.guarded_session(loopback_but_not_private) as session, pytest.raises(egress.RefusedURL):
        session.get(f"http://{HOST}:{receiver.port}/", timeout=5)
    resolver.answer(HOST, "169.254.169.254")  # metadata: refused even where private addresses are allowed
    with _session(allow_private=True) as session, pytest.raises(egress.RefusedURL, match="metadata"):
        session.get(f"http://{HOST}:{receiver.port}/", timeout=5)
    assert receiver.hosts == []


def test_a_literal_address_is_checked_too(loopback_only, receiver):
    with _session(allow_private=False) as session, pytest.raises(egress.RefusedURL):
        session.get(f"http://127.0.0.1:{receiver.port}/", timeout=5)
    with _session(allow_private=True) as session:
        assert session.get(f"http://127.0.0.1:{receiver.port}/", timeout=5).status_code == 200


def test_an_unresolvable_name_is_a_connection_error_not_a_refusal(resolver):
    with _session(allow_private=False) as session, pytest.raises(requests.ConnectionError):
        session.get("http://nowhere.rebind.test/", timeout=5)


def test_no_proxy_is_used(loopback_only, receiver):
    proxy = f"http://127.0.0.1:{receiver.port}"
    with _session(allow_private=True) as session, pytest.raises(egress.RefusedURL, match="proxy"):
        session.get("http://api.example.com/", proxies={"http": proxy}, timeout=5)
    assert receiver.hosts == []


def test_tls_keeps_the_host_name_for_sni_and_the_certificate(resolver, tmp_path):
    server = Receiver(tls_name=HOST, tmp_path=tmp_path)
    try:
        resolver.answer(HOST, "127.0.0.1")
        resolver.answer("other.rebind.test", "127.0.0.1")
        with _session(allow_private=True) as session:
            response = session.get(f"https://{HOST}:{server.port}/", verify=server.cafile, timeout=5)
            assert response.status_code == 200
            assert server.server_names == [HOST]  # SNI names the host, not the address
            with pytest.raises(requests.exceptions.SSLError):  # a certificate for another name fails
                session.get(f"https://other.rebind.test:{server.port}/", verify=server.cafile, timeout=5)
        assert resolver.lookups == [HOST, "other.rebind.test"]
    finally:
        server.stop()


def test_ipv6_forms_of_private_addresses_are_refused(resolver, receiver):
    resolver.answer(HOST, "::ffff:10.0.0.1")
    with _session(allow_private=False) as session, pytest.raises(egress.RefusedURL):
        session.get(f"http://{HOST}:{receiver.port}/", timeout=5)
    assert receiver.hosts == []


def test_the_httpx_client_connects_to_the_address_it_checked_and_keeps_the_name(resolver, receiver):
    """``guarded_sync_client`` (alert webhooks, agency moderation) as ``guarded_session``: one
    resolution, the checked address connected to, the host name in the Host header; a second
    answer (loopback, where private addresses are refused) is never asked for."""
    resolver.answer(HOST, "127.0.0.1")
    with egress.guarded_sync_client(egress.policy_check(lambda: True), timeout=5) as client:
        response = client.get(f"http://{HOST}:{receiver.port}/hook")
    assert response.status_code == 200 and response.text == "ok"
    assert resolver.lookups == [HOST] and receiver.hosts == [f"{HOST}:{receiver.port}"]

    resolver.answer(HOST, PUBLIC, "127.0.0.1")
    resolver.unreachable.add(PUBLIC)
    with egress.guarded_sync_client(egress.policy_check(lambda: False), timeout=5) as client:
        with pytest.raises(httpx2.ConnectError):
            client.get(f"http://{HOST}:{receiver.port}/hook")
        resolver.answer(HOST, "169.254.169.254")
        with pytest.raises(egress.RefusedURL, match="metadata"):
            client.get(f"http://{HOST}:{receiver.port}/hook")
    assert resolver.connects == [PUBLIC] and resolver.lookups == [HOST] * 3
    assert len(receiver.hosts) == 1  # nothing more arrived
