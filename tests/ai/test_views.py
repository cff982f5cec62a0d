"""AI settings pages: bring-your-own keys (encrypted, never shown), test connection, status."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from apps.ai.models import AIRequestLog, ProviderCredential
from tests.ai.conftest import OPENAI_KEY
from tests.fakes.llm_server import Fault

SECRET = "sk-live-agency-own-key-0123456789"


def credential_form(fake, **overrides) -> dict:
    return {
        "kind": "openai_compatible",
        "label": "Local vLLM",
        "api_key": SECRET,
        "base_url": fake.openai_base_url,
        "azure_endpoint": "",
        "azure_api_version": "",
        "model_names": "gpt-4o-mini, gpt-4o",
        "priority": "5",
        "is_enabled": "on",
        **overrides,
    }


def test_builtin_notice_when_no_provider_is_configured(world, client_for, settings):
    settings.OPENAI_API_KEY = ""
    settings.ANTHROPIC_API_KEY = ""
    settings.AZURE_OPENAI_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    client = client_for(world.owner)
    page = client.get(reverse("ai:credential-list")).content.decode()
    assert "The built-in offline writer is in use." in page
    assert "Using the built-in offline writer" in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_add_credential_key_is_encrypted_and_never_shown(world, client_for, ai):
    client = client_for(world.owner)
    response = client.post(reverse("ai:credential-list"), credential_form(ai))
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(label="Local vLLM")
    assert credential.api_key == SECRET and credential.model_names == ["gpt-4o-mini", "gpt-4o"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM ai_providercredential WHERE id = %s", [credential.pk])
        stored = cursor.fetchone()[0]
    assert SECRET not in stored and stored.startswith("gAAAA")  # Fernet token
    page = client.get(reverse("ai:credential-list")).content.decode()
    assert SECRET not in page and "…6789" in page
    edit = client.get(reverse("ai:credential-edit", args=[credential.pk])).content.decode()
    assert SECRET not in edit


@pytest.mark.django_db(transaction=True)
def test_agency_key_is_used_first_and_empty_key_on_edit_keeps_it(world, client_for, ai):
    from apps.ai import gateway
    from apps.ai.types import AIRequest, Message

    client = client_for(world.owner)
    client.post(reverse("ai:credential-list"), credential_form(ai))
    credential = ProviderCredential.objects.get(label="Local vLLM")
    response = gateway.generate_sync(
        AIRequest(feature="t", messages=[Message("user", "hi")], agency_id=world.agency.pk)
    )
    assert response.provider == credential.provider_name
    assert ai.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    client.post(reverse("ai:credential-edit", args=[credential.pk]), credential_form(ai, api_key="", label="Renamed"))
    credential.refresh_from_db()
    assert credential.label == "Renamed" and credential.api_key == SECRET
    # Another agency's calls never use this agency's key.
    from tests.accounts.factories import AgencyFactory

    other = AgencyFactory()
    response = gateway.generate_sync(AIRequest(feature="t", messages=[Message("user", "hi")], agency_id=other.pk))
    assert response.provider == "openai" and ai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.django_db(transaction=True)
def test_test_connection_reports_latency_or_the_typed_error(world, client_for, ai):
    client = client_for(world.owner)
    client.post(reverse("ai:credential-list"), credential_form(ai))
    credential = ProviderCredential.objects.get()
    fragment = client.post(reverse("ai:credential-test", args=[credential.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and b"Connected: gpt-4o-mini answered in" in fragment.content
    ai.add_fault(Fault("status", status=401))
    fragment = client.post(reverse("ai:credential-test", args=[credential.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "AUTHENTICATION" in fragment and SECRET not in fragment
    credential.refresh_from_db()
    assert credential.last_test_ok is False


def test_credential_form_errors(world, client_for, fake_llm, settings):
    settings.AI_ALLOW_PRIVATE_BASE_URLS = True  # the fake listens on loopback
    client = client_for(world.owner)
    response = client.post(
        reverse("ai:credential-list"),
        credential_form(fake_llm, kind="openai_compatible", base_url="", model_names=" , "),
    )
    body = response.content.decode()
    assert response.status_code == 200 and "List at least one model name." in body
    response = client.post(reverse("ai:credential-list"), credential_form(fake_llm, base_url=""))
    assert "An OpenAI-compatible server needs its base URL." in response.content.decode()
    response = client.post(
        reverse("ai:credential-list"), credential_form(fake_llm, kind="anthropic", api_key="", base_url="")
    )
    assert "Paste the API key for this provider." in response.content.decode()
    long_url = fake_llm.openai_base_url + "/" + "v" * (275 - len(fake_llm.openai_base_url) - 1)
    response = client.post(reverse("ai:credential-list"), credential_form(fake_llm, base_url=long_url))
    assert response.status_code == 200
    assert "Ensure this value has at most 200 characters (it has 275)." in response.content.decode()
    response = client.post(
        reverse("ai:credential-list"),
        credential_form(fake_llm, kind="azure", base_url="", azure_endpoint="https://a.example.com/" + "x" * 250),
    )
    assert "Ensure this value has at most 200 characters" in response.content.decode()
    assert not ProviderCredential.objects.exists()


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_read_only_roles_cannot_manage_keys(world, client_for, fake_llm, role):
    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai", label="Main", api_key=SECRET, model_names=["gpt-4o-mini"]
    )
    client = client_for(world.member(role))
    page = client.get(reverse("ai:credential-list"))
    assert page.status_code == 200 and b"Add a connection" not in page.content
    client.post(reverse("ai:credential-list"), credential_form(fake_llm, label="Sneaky"))
    assert not ProviderCredential.objects.filter(label="Sneaky").exists()
    assert client.post(reverse("ai:credential-delete", args=[credential.pk])).status_code == 403
    assert client.post(reverse("ai:credential-test", args=[credential.pk])).status_code == 403
    assert client.get(reverse("ai:credential-edit", args=[credential.pk])).status_code == 403


def test_provider_status_page(world, client_for, ai):
    from django.utils import timezone

    AIRequestLog.objects.bulk_create(
        [
            AIRequestLog(
                agency=world.agency,
                feature="t",
                provider="openai",
                model="gpt-4o-mini",
                latency_ms=ms,
                error_kind="SERVER_ERROR" if ms > 300 else "",
                created_at=timezone.now(),
            )
            for ms in (100, 200, 300, 400)
        ]
    )
    page = client_for(world.viewer).get(reverse("ai:provider-status")).content.decode()
    assert "gpt-4o-mini" in page and "25%" in page and "200 ms" in page
    assert "closed" in page


def test_admin_never_shows_keys(world, fake_llm):
    from django.test import Client

    from tests.accounts.factories import UserFactory

    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai", label="Main", api_key=SECRET, model_names=["gpt-4o-mini"]
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    for url in (
        reverse("admin:ai_providercredential_changelist"),
        reverse("admin:ai_providercredential_change", args=[credential.pk]),
    ):
        body = client.get(url).content.decode()
        assert SECRET not in body and "Main" in body


@pytest.mark.parametrize(
    ("role", "sees_spend"), [("owner", True), ("manager", True), ("chatter", False), ("viewer", False)]
)
def test_ai_spend_is_shown_to_owners_and_managers_only(world, client_for, builtin, role, sees_spend):
    from decimal import Decimal

    from django.utils import timezone

    AIRequestLog.objects.create(
        agency=world.agency, feature="t", provider="openai", model="gpt-4o-mini", cost_usd=Decimal("1.2345"),
        created_at=timezone.now(),
    )  # fmt: skip
    client = client_for(world.member(role))
    dashboard = client.get("/").content.decode()
    assert "<strong>1</strong> AI call in 30 days" in dashboard
    assert ("$1.23" in dashboard) is sees_spend
    status = client.get(reverse("ai:provider-status")).content.decode()
    assert "Last 30 days: 1 AI call," in status
    assert ("$1.2345" in status) is sees_spend


@pytest.mark.django_db(transaction=True)
def test_test_connection_ends_at_its_timeout_however_slowly_the_server_drips(world, client_for, ai, settings):
    """Each read is quick (a byte every 0.1 s), the answer never ends: the test gives up at
    AI_TIMEOUT_SECONDS (2 s here) with the timeout message instead of holding the request."""
    import time

    client = client_for(world.owner)
    client.post(reverse("ai:credential-list"), credential_form(ai))
    credential = ProviderCredential.objects.get()
    ai.add_fault(Fault("drip", delay=0.1), api="openai")
    started = time.monotonic()
    fragment = client.post(reverse("ai:credential-test", args=[credential.pk]), HTTP_HX_REQUEST="true")
    assert time.monotonic() - started < settings.AI_TIMEOUT_SECONDS + 2
    assert "TIMEOUT: the provider did not answer in time." in fragment.content.decode()
    credential.refresh_from_db()
    assert credential.last_test_ok is False
