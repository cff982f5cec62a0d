"""Issue 8 §2: an agency's provider connection cannot be turned against its key or the network.

The fake provider server listens on loopback, the only address these tests may send traffic to.
Private-range, link-local and metadata addresses are only ever given to the validator, with
every socket connection and DNS lookup made to fail the test.
"""

from __future__ import annotations

import socket

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from apps.ai import egress, services
from apps.ai.models import ProviderCredential
from apps.core.errors import ApplicationError
from tests.fakes.llm_server import Fault

OWNER_KEY = "sk-owner-own-openai-key-0123456789"
REBIND_HOST = "llm.rebind.test"


def edit_form(credential: ProviderCredential, **overrides) -> dict:
    return {
        "kind": credential.kind,
        "label": credential.label,
        "api_key": "",
        "base_url": credential.base_url,
        "azure_endpoint": credential.azure_endpoint,
        "azure_api_version": credential.azure_api_version,
        "model_names": ", ".join(credential.model_names),
        "priority": str(credential.priority),
        "is_enabled": "on",
        **overrides,
    }


def new_form(**overrides) -> dict:
    return {
        "kind": "openai_compatible",
        "label": "Local server",
        "api_key": "",
        "base_url": "",
        "azure_endpoint": "",
        "azure_api_version": "",
        "model_names": "gpt-4o-mini",
        "priority": "5",
        "is_enabled": "on",
        **overrides,
    }


@pytest.fixture
def owner_openai(world) -> ProviderCredential:
    return ProviderCredential.objects.create(
        agency=world.agency, kind="openai", label="Owner OpenAI", api_key=OWNER_KEY, model_names=["gpt-4o-mini"]
    )


@pytest.fixture
def no_network(monkeypatch):
    """Any DNS lookup or socket connection fails the test: the validator must decide on its own."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _keys_seen(fake) -> list[str]:
    return [request.headers.get("authorization", "") for request in fake.requests]


# --- The attack: a manager redirects the owner's key --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_manager_cannot_send_the_owners_openai_key_to_their_own_server(world, client_for, ai, settings, owner_openai):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True  # the attacker's server is the loopback fake: the rule must hold anyway
    client = client_for(world.manager)
    response = client.post(
        reverse("ai:credential-edit", args=[owner_openai.pk]), edit_form(owner_openai, base_url=ai.openai_base_url)
    )
    assert response.status_code == 200  # the form comes back with an error; nothing saved
    client.post(reverse("ai:credential-test", args=[owner_openai.pk]), HTTP_HX_REQUEST="true")
    owner_openai.refresh_from_db()
    assert owner_openai.base_url == "" and owner_openai.kind == "openai"
    assert not any(OWNER_KEY in header for header in _keys_seen(ai))


@pytest.mark.django_db(transaction=True)
def test_switching_to_a_compatible_server_needs_the_key_again(world, client_for, ai, settings, owner_openai):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    client = client_for(world.manager)
    url = reverse("ai:credential-edit", args=[owner_openai.pk])
    response = client.post(url, edit_form(owner_openai, kind="openai_compatible", base_url=ai.openai_base_url))
    assert "Enter the API key again to change the URL." in response.content.decode()
    owner_openai.refresh_from_db()
    assert (owner_openai.kind, owner_openai.base_url, owner_openai.api_key) == ("openai", "", OWNER_KEY)
    client.post(reverse("ai:credential-test", args=[owner_openai.pk]), HTTP_HX_REQUEST="true")
    assert not any(OWNER_KEY in header for header in _keys_seen(ai))

    # Whoever types the key in again knows it already: the change goes through.
    response = client.post(
        url,
        edit_form(owner_openai, kind="openai_compatible", base_url=ai.openai_base_url, api_key="sk-mine-0123456789"),
    )
    assert response.status_code == 302
    owner_openai.refresh_from_db()
    assert owner_openai.base_url == ai.openai_base_url and owner_openai.api_key == "sk-mine-0123456789"


@pytest.mark.django_db(transaction=True)
def test_changing_a_compatible_servers_url_needs_the_key_again(world, client_for, ai, settings):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="vLLM", api_key=OWNER_KEY,
        base_url=ai.openai_base_url, model_names=["gpt-4o-mini"],
    )  # fmt: skip
    client = client_for(world.manager)
    url = reverse("ai:credential-edit", args=[credential.pk])
    moved = ai.openai_base_url.replace("/v1", "/v2")
    response = client.post(url, edit_form(credential, base_url=moved))
    assert "Enter the API key again to change the URL." in response.content.decode()
    credential.refresh_from_db()
    assert credential.base_url == ai.openai_base_url
    # Other fields still save without the key.
    assert client.post(url, edit_form(credential, label="vLLM renamed")).status_code == 302
    credential.refresh_from_db()
    assert credential.label == "vLLM renamed" and credential.api_key == OWNER_KEY


def test_only_the_compatible_kind_takes_a_base_url_and_only_azure_an_endpoint(world, client_for, settings):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    client = client_for(world.owner)
    for kind in ("openai", "anthropic", "azure"):
        body = client.post(
            reverse("ai:credential-list"),
            new_form(kind=kind, label=kind, api_key="sk-x-0123456789", base_url="http://127.0.0.1:9/v1",
                     azure_endpoint="https://127.0.0.1:9" if kind == "azure" else "", azure_api_version="2024-10-21"),
        ).content.decode()  # fmt: skip
        assert "Only an OpenAI-compatible server takes a base URL." in body
    for kind in ("openai", "anthropic", "openai_compatible"):
        body = client.post(
            reverse("ai:credential-list"),
            new_form(kind=kind, label=kind, api_key="sk-x-0123456789", azure_endpoint="https://127.0.0.1:9",
                     base_url="http://127.0.0.1:9/v1" if kind == "openai_compatible" else ""),
        ).content.decode()  # fmt: skip
        assert "Only Azure OpenAI takes an endpoint." in body
    assert not ProviderCredential.objects.exists()
    # The service refuses it too, whoever calls it.
    with pytest.raises(ApplicationError, match="takes a base URL"):
        services.credential_create(
            membership=world.owner,
            data={"kind": "openai", "label": "x", "api_key": "sk-x-0123", "base_url": "https://example.com/v1",
                  "model_names": ["gpt-4o-mini"]},
        )  # fmt: skip


def test_the_database_refuses_urls_on_the_wrong_kind(world):
    for values in (
        {"kind": "openai", "base_url": "http://127.0.0.1/v1"},
        {"kind": "anthropic", "azure_endpoint": "https://x.test"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            ProviderCredential.objects.create(agency=world.agency, label="bad", model_names=["m"], **values)


# --- Private addresses ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_urls_are_refused_when_private_urls_are_not_allowed(world, client_for, ai, settings, host):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    url = f"http://{host}:{ai.port}/v1"
    body = client_for(world.owner).post(reverse("ai:credential-list"), new_form(base_url=url)).content.decode()
    assert "private or internal network address" in body
    assert not ProviderCredential.objects.exists()
    assert ai.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_stored_loopback_url_is_refused_at_call_time_before_connecting(world, client_for, ai, settings):
    """A row written in the admin or the database, or a setting changed afterwards."""
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = ""  # no platform provider: the built-in answers
    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="Edited in the admin", api_key=OWNER_KEY,
        base_url=f"http://localhost:{ai.port}/v1", model_names=["gpt-4o-mini"],
    )  # fmt: skip
    from apps.ai import gateway
    from apps.ai.types import AIRequest, Message

    response = gateway.generate_sync(
        AIRequest(feature="t", messages=[Message("user", "hi")], agency_id=world.agency.pk)
    )
    assert response.provider == "builtin" and response.degraded
    fragment = (
        client_for(world.owner)
        .post(reverse("ai:credential-test", args=[credential.pk]), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "private or internal network address" in fragment
    assert ai.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_name_that_later_resolves_to_loopback_is_refused_before_connecting(world, ai, settings, monkeypatch):
    """DNS rebinding: public when saved, loopback when called."""
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = ""
    real_getaddrinfo = socket.getaddrinfo
    answer = {"address": "93.184.216.34"}  # only ever given to the validator, never connected to

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == REBIND_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["address"], port or 0))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    credential = services.credential_create(
        membership=world.owner,
        data={"kind": "openai_compatible", "label": "Rebinding", "api_key": OWNER_KEY,
              "base_url": f"http://{REBIND_HOST}:{ai.port}/v1", "model_names": ["gpt-4o-mini"]},
    )  # fmt: skip
    answer["address"] = "127.0.0.1"
    from apps.ai import gateway
    from apps.ai.types import AIRequest, Message

    response = gateway.generate_sync(
        AIRequest(feature="t", messages=[Message("user", "hi")], agency_id=world.agency.pk)
    )
    assert response.provider == "builtin"
    credential = services.credential_test(membership=world.owner, credential=credential)
    assert credential.last_test_ok is False and "private or internal network address" in credential.last_test_message
    assert ai.requests == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", REBIND_HOST])
async def test_an_agency_provider_refuses_loopback_at_call_time_without_retrying(ai, settings, monkeypatch, host):
    """The provider's own HTTP client refuses, whatever was checked when the URL was saved."""
    from apps.ai.registry import provider_from_config
    from apps.ai.types import AIError, AIRequest, Message

    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(name, port, *args, **kwargs):
        if name == REBIND_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]
        return real_getaddrinfo(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    for kind in ("openai_compatible", "anthropic"):
        provider = provider_from_config(
            name=f"{kind}:1", kind=kind, models=("gpt-4o-mini",), api_key=OWNER_KEY,
            base_url=f"http://{host}:{ai.port}" + ("/v1" if kind != "anthropic" else ""), guarded=True,
        )  # fmt: skip
        request = AIRequest(feature="t", messages=[Message("user", "hi")])
        try:
            with pytest.raises(AIError, match="private or internal network address") as refused:
                await provider.complete(request, "gpt-4o-mini", timeout=2)
            assert refused.value.retryable is False
            with pytest.raises(AIError, match="private or internal network address"):
                async for _ in provider.stream(request, "gpt-4o-mini", timeout=2):
                    pass
        finally:
            await provider.aclose()
    assert ai.requests == []
    # Allowed, the same guarded clients reach the loopback server, streamed or not.
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    for kind, base_url in (("openai_compatible", ai.openai_base_url), ("anthropic", ai.anthropic_base_url)):
        provider = provider_from_config(
            name=f"{kind}:1", kind=kind, models=("m",), api_key=OWNER_KEY, base_url=base_url, guarded=True
        )
        request = AIRequest(feature="t", messages=[Message("user", "hi")])
        try:
            result = await provider.complete(request, "gpt-4o-mini", 2)
            events = [event async for event in provider.stream(request, "gpt-4o-mini", 2)]
        finally:
            await provider.aclose()
        assert result.text and events[-1].text == result.text
    assert len(ai.requests) == 4


async def test_an_agency_providers_client_follows_no_redirect_and_no_proxy():
    client = egress.guarded_http_client()
    try:
        assert client.follow_redirects is False and client.trust_env is False
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/v1",
        "http://192.168.1.1:11434/v1",
        "http://172.16.5.4/v1",
        "http://100.64.0.1/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.1.1/v1",
        "http://[fd00::1]/v1",
        "http://[fe80::1]/v1",
        "http://[::ffff:10.0.0.1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://[fd00:ec2::254]/v1",
        "http://0.0.0.0:8000/v1",
        "http://127.0.0.1:11434/v1",
        "http://[::1]/v1",
        "http://224.0.0.1/v1",
    ],
)
def test_the_validator_refuses_private_literals_without_connecting(no_network, url):
    with pytest.raises(egress.RefusedURL):
        egress.check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://224.0.0.1/",
    ],
)
def test_metadata_and_multicast_addresses_are_refused_even_when_private_urls_are_allowed(no_network, url):
    with pytest.raises(egress.RefusedURL):
        egress.check_url(url, allow_private=True)


def test_the_validator_accepts_public_literals_and_private_ones_when_allowed(no_network):
    egress.check_url("https://93.184.216.34/v1", allow_private=False)
    egress.check_url("http://10.0.0.1:11434/v1", allow_private=True)
    egress.check_url("http://127.0.0.1:11434/v1", allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.216.34/v1", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http://user:secret@93.184.216.34/v1", "user name or password"),
        ("http:///v1", "host"),
    ],
)
def test_the_validator_refuses_other_schemes_credentials_and_missing_hosts(no_network, url, message):
    with pytest.raises(egress.RefusedURL, match=message):
        egress.check_url(url, allow_private=True)


def test_host_names_resolving_to_loopback_are_refused(settings):
    with pytest.raises(egress.RefusedURL, match="private or internal network address"):
        egress.check_url("http://localhost:11434/v1", allow_private=False)
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    egress.check_url("http://localhost:11434/v1")  # the setting decides when not given


# --- Test connection reports the kind and status, never the upstream body ----------------------


@pytest.mark.django_db(transaction=True)
def test_test_connection_shows_the_error_kind_and_status_not_the_upstream_body(world, client_for, ai, settings):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True
    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="vLLM", api_key=OWNER_KEY,
        base_url=ai.openai_base_url, model_names=["gpt-4o-mini"],
    )  # fmt: skip
    ai.add_fault(Fault("status", status=500, message="root:x:0:0 internal-db-password=hunter2"))
    fragment = (
        client_for(world.owner)
        .post(reverse("ai:credential-test", args=[credential.pk]), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "SERVER_ERROR" in fragment and "HTTP 500" in fragment
    assert "hunter2" not in fragment and "root:x" not in fragment
    credential.refresh_from_db()
    assert "hunter2" not in credential.last_test_message and OWNER_KEY not in credential.last_test_message


@pytest.mark.django_db(transaction=True)
def test_the_migration_clears_urls_on_other_kinds_and_old_failure_messages(world):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("ai", "0001_initial")])
    old_model = executor.loader.project_state([("ai", "0001_initial")]).apps.get_model("ai", "ProviderCredential")
    common = {"agency_id": world.agency.pk, "model_names": ["m"], "api_key": ""}
    openai = old_model.objects.create(
        kind="openai", label="a", base_url="http://evil.test/v1", last_test_ok=False,
        last_test_message="SERVER_ERROR: root:x:0:0", **common,
    )  # fmt: skip
    compatible = old_model.objects.create(
        kind="openai_compatible", label="b", base_url="http://127.0.0.1:11434/v1", azure_endpoint="https://x.test",
        last_test_ok=True, last_test_message="Connected", **common,
    )  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # 0002 then 0003, as a deployment runs them
    openai = ProviderCredential.objects.get(pk=openai.pk)
    compatible = ProviderCredential.objects.get(pk=compatible.pk)
    assert (openai.base_url, openai.last_test_message, openai.last_test_ok) == ("", "", None)
    assert (compatible.base_url, compatible.azure_endpoint) == ("http://127.0.0.1:11434/v1", "")
    assert compatible.last_test_message == "Connected"
