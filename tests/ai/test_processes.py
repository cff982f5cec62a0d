"""What several processes must agree on, tested with real child processes on the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from apps.ai import gateway
from apps.ai.models import AIRequestLog, ProviderCredential
from apps.ai.types import AIError, AIRequest, ErrorKind, Message
from apps.core import crypto
from tests.accounts.factories import AgencyFactory
from tests.processes import ROOT, database_url

NO_KEYS = {
    "OPENAI_API_KEY": "",
    "ANTHROPIC_API_KEY": "",
    "AZURE_OPENAI_API_KEY": "",
    "OPENAI_COMPATIBLE_BASE_URL": "",
    "DEFAULT_AI_PROVIDER": "",
}
CHILD = """
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
django.setup()
from apps.ai import gateway
from apps.ai.types import AIError, AIRequest, Message
results = []
for index in range(int(os.environ["CALLS"])):
    request = AIRequest(feature=os.environ["FEATURE"], messages=[Message("user", f"child {index}")],
                        agency_id=int(os.environ["AGENCY"]), temperature=0.9)
    try:
        results.append(gateway.generate_sync(request).provider)
    except AIError as error:
        results.append(error.kind.value)
print(json.dumps(results))
"""


def _not_at_the_end_of_an_hour() -> None:
    import time

    into_hour = time.time() % 3600
    if into_hour > 3600 - 30:
        time.sleep(3600 - into_hour + 1)


def run_child(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(), **NO_KEYS, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_rate_limits_hold_across_two_processes(settings):
    # An hour window (not a minute one): a test that straddles the window's end would be refilled.
    limits = {"builtin": {"minute": 1000, "hour": 3, "day": 10000}}
    _not_at_the_end_of_an_hour()
    settings.AI_RATE_LIMITS = limits
    for key, value in NO_KEYS.items():
        setattr(settings, key, value)
    agency = AgencyFactory()
    for index in range(2):
        gateway.generate_sync(
            AIRequest(feature="proc.limit", messages=[Message("user", f"parent {index}")], agency_id=agency.pk)
        )
    results = run_child(
        {"AI_RATE_LIMITS": json.dumps(limits), "AGENCY": str(agency.pk), "CALLS": "2", "FEATURE": "proc.limit"}
    )
    assert results == ["builtin", "RATE_LIMIT"]
    with pytest.raises(AIError) as caught:
        gateway.generate_sync(AIRequest(feature="proc.limit", messages=[Message("user", "again")], agency_id=agency.pk))
    assert caught.value.kind == ErrorKind.RATE_LIMIT


@pytest.mark.django_db(transaction=True)
def test_ledger_rows_survive_a_clean_shutdown():
    agency = AgencyFactory()
    # A flush interval longer than the child lives: only the shutdown flush can write the rows.
    results = run_child(
        {"AI_LEDGER_FLUSH_SECONDS": "60", "AGENCY": str(agency.pk), "CALLS": "5", "FEATURE": "proc.ledger"}
    )
    assert results == ["builtin"] * 5
    assert AIRequestLog.objects.filter(feature="proc.ledger", agency=agency).count() == 5


def test_importing_the_gateway_makes_no_network_call():
    script = """
import socket, os
calls = []
def record(name):
    def fake(*args, **kwargs):
        calls.append(name)
        raise OSError("network disabled for this check")
    return fake
socket.socket.connect = record("connect")
socket.create_connection = record("create_connection")
socket.getaddrinfo = record("getaddrinfo")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
import django
django.setup()
import apps.ai.gateway, apps.ai.providers.openai_chat, apps.ai.providers.anthropic_messages, apps.ai.providers.builtin
print(len(calls))
"""
    env = {**os.environ, "OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0"


def test_key_rotation_reencrypts_with_the_newest_key(world, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    crypto.reset_keys_cache()
    try:
        credential = ProviderCredential.objects.create(
            agency=world.agency, kind="openai", label="Main", api_key="sk-rotate-me-123456", model_names=["gpt-4o-mini"]
        )
        settings.ENCRYPTION_KEYS = [new, old]
        crypto.reset_keys_cache()
        call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115
        settings.ENCRYPTION_KEYS = [new]  # the old key is gone: only a rotated secret still reads
        crypto.reset_keys_cache()
        assert ProviderCredential.objects.get(pk=credential.pk).api_key == "sk-rotate-me-123456"
    finally:
        crypto.reset_keys_cache()  # the settings fixture restores the keys; forget the cached cipher
