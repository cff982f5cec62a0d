# ruff: noqa: F811 (pytest fixtures imported from tests/fakes/resolver.py)
"""The moderation check (apps/ai/moderation.py) through the real openai SDK against the loopback
fake (tests/fakes/llm_server.py): categories per text, the agency's own credential first, and
failing open to the local rules. Host names of agency endpoints are scripted by
tests/fakes/resolver.py; a scripted address that is not loopback is never connected to."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import cache

from apps.ai import moderation, services
from apps.ai.models import ProviderCredential
from apps.ai.moderation import MODEL, moderate
from apps.ai.registry import credentials_version_key
from tests.ai.conftest import OPENAI_KEY
from tests.fakes.llm_server import Fault
from tests.fakes.resolver import resolver  # noqa: F401 (fixture)

PUBLIC = "93.184.216.34"  # only ever given to a check, never connected to
METADATA = "169.254.169.254"


def test_flagged_categories_per_text_in_order(ai, db):
    ai.configure(moderation_flagged=["sunflower"])
    answer = moderate(agency_id=None, texts=["a beach set at dawn", "the sunflower set"])
    assert answer == [frozenset(), frozenset({"sexual", "sexual/minors"})]
    [request] = [r for r in ai.requests if r.api == "moderation"]
    assert request.path == "/v1/moderations"
    assert request.json == {"model": MODEL, "input": ["a beach set at dawn", "the sunflower set"]}
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert ai.count("openai") == 0  # no completion was asked for


def test_the_agencys_own_openai_compatible_credential_comes_first(ai, world):
    ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="local", api_key="sk-agency-own-key-123",
        base_url=ai.openai_base_url, model_names=["llama"],
    )  # fmt: skip
    assert moderate(agency_id=world.agency.pk, texts=["hello"]) == [frozenset()]
    [request] = [r for r in ai.requests if r.api == "moderation"]
    assert request.headers["authorization"] == "Bearer sk-agency-own-key-123"


def test_without_a_provider_that_moderates_there_is_no_answer_and_no_call(ai, settings, db):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    assert moderate(agency_id=None, texts=["hello"]) is None
    assert ai.count("moderation") == 0


@pytest.mark.parametrize("fault", [Fault("status", status=500), Fault("status", status=404), Fault("hang")])
def test_a_failing_endpoint_fails_open_and_is_logged(ai, settings, db, caplog, fault):
    settings.AI_TIMEOUT_SECONDS = 0.5
    ai.add_fault(fault, api="moderation")
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=None, texts=["hello"]) is None
    assert "moderation unavailable" in caplog.text


def test_an_answer_not_in_openais_shape_fails_open_and_is_logged(ai, db, caplog):
    ai.configure(moderation_flagged=["sunflower"])
    ai.add_fault(Fault("malformed_chunk"), api="moderation")
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=None, texts=["the sunflower set"]) is None
    assert "moderation unavailable" in caplog.text
    assert moderate(agency_id=None, texts=["the sunflower set"]) == [frozenset({"sexual", "sexual/minors"})]


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"id": "modr-1"},
        {"results": {"categories": {}}},
        {"results": ["flagged"]},
        {"results": [{"categories": ["sexual"]}]},
        {"results": [{"categories": {"sexual": 1, "violence": 0}}]},
        {"results": [{"categories": {"sexual": "true"}}]},
    ],
    ids=["a list", "no results", "results not a list", "a result not an object", "categories a list",
         "flags as numbers", "flags as strings"],
)  # fmt: skip
def test_only_openais_shape_of_answer_is_read(answer):
    with pytest.raises(TypeError):
        moderation.flagged_categories(answer)


def test_openais_answer_gives_each_texts_flagged_categories():
    answer = {
        "results": [
            {"flagged": False, "categories": {"sexual": False, "sexual/minors": False}},
            {"flagged": True, "categories": {"sexual": True, "sexual/minors": True, "hate": False}},
        ]
    }
    assert moderation.flagged_categories(answer) == [frozenset(), frozenset({"sexual", "sexual/minors"})]


def test_nothing_to_check_needs_no_call(ai, db):
    assert moderate(agency_id=None, texts=[]) == []
    assert ai.count("moderation") == 0


def test_an_agency_url_the_egress_policy_refuses_is_never_called(ai, world, settings, caplog):
    """A connection saved while private addresses were allowed (or edited in the database) is
    refused at call time: neither the key nor the text reaches the address."""
    ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="local", api_key="sk-agency-own-key-123",
        base_url=ai.openai_base_url, model_names=["llama"],
    )  # fmt: skip
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=world.agency.pk, texts=["hello"]) is None
    assert ai.count("moderation") == 0
    assert [record.error for record in caplog.records] == ["RefusedURL"]


def _own_credential(world, ai, key="sk-agency-own-key-123", base_url=None):
    return ProviderCredential.objects.create(
        agency=world.agency, kind="openai_compatible", label="local", api_key=key,
        base_url=base_url or ai.openai_base_url, model_names=["llama"],
    )  # fmt: skip


def test_the_agencys_endpoint_is_resolved_once_and_the_checked_address_connected_to(ai, world, resolver):
    """DNS rebinding: the name answers the fake's loopback address (allowed here) to its first
    lookup and the cloud metadata address to any later one. The call resolves it once, checks that
    answer and connects to it: the fake moderates the text, and nothing aims at the metadata
    address (the test would refuse it before any packet left)."""
    host = "moderation-once.rebind.test"
    resolver.answer(host, "127.0.0.1", METADATA)
    resolver.unreachable.add(METADATA)
    _own_credential(world, ai, base_url=f"http://{host}:{ai.port}/v1")
    assert moderate(agency_id=world.agency.pk, texts=["hello"]) == [frozenset()]
    assert resolver.lookups == [host] and resolver.connects == []
    [request] = [r for r in ai.requests if r.api == "moderation"]
    assert request.headers["host"] == f"{host}:{ai.port}"  # the name, not the address, is what the server sees
    assert request.headers["authorization"] == "Bearer sk-agency-own-key-123"


def test_a_name_public_when_checked_and_internal_when_connected_reaches_nothing(ai, world, settings, resolver, caplog):
    """Private addresses refused: the first answer is public and passes, the second would be the
    fake on loopback. The connection goes to the public address it checked (refused by the test,
    never sent) and neither the key nor the text reaches the internal server."""
    host = "moderation-public.rebind.test"
    settings.AI_ALLOW_PRIVATE_BASE_URLS = False
    resolver.answer(host, PUBLIC, "127.0.0.1")
    resolver.unreachable.add(PUBLIC)
    _own_credential(world, ai, base_url=f"http://{host}:{ai.port}/v1")
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=world.agency.pk, texts=["hello"]) is None
    assert ai.count("moderation") == 0
    assert resolver.connects == [PUBLIC] and resolver.lookups == [host]
    assert "moderation unavailable" in caplog.text


def test_an_internal_answer_at_connection_time_is_refused_before_connecting(ai, world, resolver, caplog):
    """The metadata address is refused even where private addresses are allowed, at the connection
    the call makes, and the log names the refusal."""
    host = "moderation-metadata.rebind.test"
    resolver.answer(host, METADATA)
    resolver.unreachable.add(METADATA)
    _own_credential(world, ai, base_url=f"http://{host}:{ai.port}/v1")
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=world.agency.pk, texts=["hello"]) is None
    assert resolver.connects == [] and ai.count("moderation") == 0
    assert [record.error for record in caplog.records] == ["RefusedURL"]


@pytest.mark.timeout(30, func_only=True)  # the old client never gave up on this server: fail, not hang
def test_an_agency_endpoint_dripping_its_answer_fails_open_at_the_timeout(ai, world, settings, caplog):
    """Each byte comes well within the read timeout (a space every 0.1 s) and the answer never
    ends: the call ends at AI_TIMEOUT_SECONDS (1 s here), logged, and the caller keeps its local
    rules. The next call on the same kept client has its own full time and is answered."""
    settings.AI_TIMEOUT_SECONDS = 1.0
    _own_credential(world, ai, key="sk-agency-drip-key-42")
    ai.add_fault(Fault("drip", delay=0.1), api="moderation")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=world.agency.pk, texts=["hello"]) is None
    assert time.monotonic() - started < 1.0 + 1.5
    assert [record.error for record in caplog.records] == ["APITimeoutError"]
    assert moderate(agency_id=world.agency.pk, texts=["hello again"]) == [frozenset()]


@pytest.fixture
def shared_cache(settings, tmp_path):
    """A cache every process reads, in both modes: Redis where the run has it, a folder of files
    (Django's file-based cache, shared by the processes of one machine) on the embedded default."""
    if not settings.CACHES["default"]["BACKEND"].endswith(".RedisCache"):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                       "LOCATION": str(tmp_path / "cache")}}  # fmt: skip


def test_the_agencys_endpoint_is_read_once_not_at_every_answer(ai, world, shared_cache, django_assert_num_queries):
    """Every finished studio answer is moderated: the agency's credential comes from the process's
    copy after the first answer, and each request still carries the agency's own key."""
    _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["first"]) == [frozenset()]
    with django_assert_num_queries(0):
        assert moderate(agency_id=world.agency.pk, texts=["second"]) == [frozenset()]
    requests = [r for r in ai.requests if r.api == "moderation"]
    assert [r.headers["authorization"] for r in requests] == ["Bearer sk-agency-own-key-123"] * 2


def test_without_a_shared_cache_every_answer_reads_the_credential(ai, world, settings, django_assert_num_queries):
    """Each process of the embedded default has a cache of its own, where another process's change
    would never show: there the credential is read at every answer."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    credential = _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["first"]) == [frozenset()]
    ProviderCredential.objects.filter(pk=credential.pk).update(api_key="sk-changed-elsewhere-1")  # another process
    with django_assert_num_queries(1):
        assert moderate(agency_id=world.agency.pk, texts=["second"]) == [frozenset()]
    keys = [r.headers["authorization"] for r in ai.requests if r.api == "moderation"]
    assert keys == ["Bearer sk-agency-own-key-123", "Bearer sk-changed-elsewhere-1"]


def test_a_key_changed_on_the_settings_page_is_used_by_the_next_answer(ai, world):
    credential = _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["before"]) == [frozenset()]
    services.credential_update(membership=world.owner, credential=credential, data={"api_key": "sk-rotated-456789"})
    assert moderate(agency_id=world.agency.pk, texts=["after"]) == [frozenset()]
    services.credential_delete(membership=world.owner, credential=credential)
    assert moderate(agency_id=world.agency.pk, texts=["gone"]) == [frozenset()]
    keys = [r.headers["authorization"] for r in ai.requests if r.api == "moderation"]
    assert keys == ["Bearer sk-agency-own-key-123", "Bearer sk-rotated-456789", f"Bearer {OPENAI_KEY}"]


def test_a_change_made_in_the_admin_moves_the_credentials_version(ai, world, django_capture_on_commit_callbacks):
    """The admin saves and deletes rows without the services: the version moves on commit all the
    same, so every process's providers and moderation endpoint follow."""
    credential = _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["before"]) == [frozenset()]
    before = cache.get(credentials_version_key(world.agency.pk), 0)
    with django_capture_on_commit_callbacks(execute=True):
        credential.api_key = "sk-admin-edited-7890"
        credential.save()
    assert cache.get(credentials_version_key(world.agency.pk), 0) > before
    assert moderate(agency_id=world.agency.pk, texts=["edited"]) == [frozenset()]
    with django_capture_on_commit_callbacks(execute=True):
        credential.delete()
    assert moderate(agency_id=world.agency.pk, texts=["deleted"]) == [frozenset()]
    keys = [r.headers["authorization"] for r in ai.requests if r.api == "moderation"]
    assert keys == ["Bearer sk-agency-own-key-123", "Bearer sk-admin-edited-7890", f"Bearer {OPENAI_KEY}"]


def test_another_process_change_is_seen_once_the_snapshot_is_due(ai, world, shared_cache, monkeypatch):
    """A change made by another process reaches this one through the shared credentials version,
    read again once VERSION_SNAPSHOT_SECONDS have passed (here at once)."""
    credential = _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["before"]) == [frozenset()]
    # The other process: the row changes and the shared version moves; this process is not told.
    ProviderCredential.objects.filter(pk=credential.pk).update(is_enabled=False)
    cache.set(credentials_version_key(world.agency.pk), 7, timeout=None)
    assert moderate(agency_id=world.agency.pk, texts=["within the snapshot"]) == [frozenset()]
    monkeypatch.setattr(moderation, "VERSION_SNAPSHOT_SECONDS", 0.0)
    assert moderate(agency_id=world.agency.pk, texts=["after it"]) == [frozenset()]
    keys = [r.headers["authorization"] for r in ai.requests if r.api == "moderation"]
    assert keys == ["Bearer sk-agency-own-key-123"] * 2 + [f"Bearer {OPENAI_KEY}"]


def test_a_change_that_moved_no_version_is_seen_after_the_maximum_age(ai, world, shared_cache, monkeypatch):
    credential = _own_credential(world, ai)
    assert moderate(agency_id=world.agency.pk, texts=["before"]) == [frozenset()]
    ProviderCredential.objects.filter(pk=credential.pk).update(api_key="sk-written-in-sql-1")  # no signal, no version
    monkeypatch.setattr(moderation, "VERSION_SNAPSHOT_SECONDS", 0.0)
    assert moderate(agency_id=world.agency.pk, texts=["version unchanged"]) == [frozenset()]
    monkeypatch.setattr(moderation, "ENDPOINT_MAX_AGE_SECONDS", 0.0)
    assert moderate(agency_id=world.agency.pk, texts=["too old"]) == [frozenset()]
    keys = [r.headers["authorization"] for r in ai.requests if r.api == "moderation"]
    assert keys == ["Bearer sk-agency-own-key-123"] * 2 + ["Bearer sk-written-in-sql-1"]


def test_a_cache_that_cannot_be_read_leaves_moderation_working(ai, world, settings, caplog):
    """Redis down (a loopback port nothing listens on): the endpoint is read from the database and
    the answer is still moderated with the agency's key."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # fmt: skip
    _own_credential(world, ai)
    with caplog.at_level(logging.WARNING, logger="apps.ai.moderation"):
        assert moderate(agency_id=world.agency.pk, texts=["hello"]) == [frozenset()]
    [request] = [r for r in ai.requests if r.api == "moderation"]
    assert request.headers["authorization"] == "Bearer sk-agency-own-key-123"
    assert "moderation endpoint read from the database" in caplog.text


def test_a_connection_test_leaves_the_credentials_version_alone(ai, world, django_capture_on_commit_callbacks):
    """ "Test connection" writes a report about the credential, not the credential: moving the
    version for it would make every process rebuild the agency's providers and close their clients."""
    credential = _own_credential(world, ai)
    before = cache.get(credentials_version_key(world.agency.pk), 0)
    with django_capture_on_commit_callbacks(execute=True):
        tested = services.credential_test(membership=world.owner, credential=credential)
    assert tested.last_test_ok is True
    assert cache.get(credentials_version_key(world.agency.pk), 0) == before


def test_a_credential_saved_while_the_cache_is_down_stays_saved(
    ai, world, settings, django_capture_on_commit_callbacks
):
    """The version cannot move (Redis down, a loopback port nothing listens on): the save is kept
    and the request goes on; the failed bump is logged."""
    credential = _own_credential(world, ai)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        credential.label = "renamed"
        credential.save()
    assert len(callbacks) == 1
    credential.refresh_from_db()
    assert credential.label == "renamed"
