from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.test import Client

from apps.accounts.middleware import SESSION_AGENCY
from apps.accounts.models import Agency, Creator, Membership, Role
from tests.accounts.factories import AgencyFactory, AssignmentFactory, CreatorFactory, MembershipFactory


@dataclass
class World:
    """One agency with a member of every role and two creators (the chatter has the first)."""

    agency: Agency
    owner: Membership
    manager: Membership
    chatter: Membership
    viewer: Membership
    creator: Creator
    other_creator: Creator

    def member(self, role: str) -> Membership:
        return getattr(self, role)


def build_world(name: str = "Agency") -> World:
    agency = AgencyFactory(name=name)
    members = {role: MembershipFactory(agency=agency, role=role) for role in Role.values}
    creator = CreatorFactory(agency=agency, display_name=f"{name} Star")
    other = CreatorFactory(agency=agency, display_name=f"{name} Nova")
    AssignmentFactory(agency=agency, membership=members["chatter"], creator=creator)
    return World(agency, members["owner"], members["manager"], members["chatter"], members["viewer"], creator, other)


@pytest.fixture
def world(db) -> World:
    return build_world("Velvet")


@pytest.fixture
def other_world(db) -> World:
    return build_world("Rival")


def login_client(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[SESSION_AGENCY] = membership.agency_id
    session.save()
    return client


@pytest.fixture
def client_for():
    return login_client


@pytest.fixture(autouse=True)
def _generous_plan(settings):
    """Agencies made by tests start on a trial of the Enterprise plan (no cap on creators or
    seats), so tests of other apps never meet a plan limit; tests/billing picks its own plans."""
    settings.BILLING_TRIAL_PLAN = "enterprise"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s a user; tests care about behaviour, not the hash's strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_celery():
    """Run tasks inline, for smoke tests of a page whose result arrives through a task.

    Delivery guarantees are tested with a real worker (tests/core/test_worker.py).
    """
    from huntaze.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """Async tests run ORM calls through sync_to_async in a worker thread whose database
    connection would outlive the test (and keep PostgreSQL from dropping the test database)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    from apps.ai.registry import registry

    await registry.aclose_current_loop()  # the providers' HTTP clients belong to this test's loop
    await sync_to_async(connections.close_all)()


@pytest.fixture(scope="session")
def fake_llm():
    """The loopback OpenAI/Anthropic fake (tests/fakes/llm_server.py), one per test run."""
    from tests.fakes.llm_server import FakeLLMServer

    server = FakeLLMServer().start()
    yield server
    server.stop()


def _clear_cache_and_shared_state() -> None:
    """The Django cache and apps.core.shared's state (rate-limit windows, breakers, cached AI
    answers): with Redis only this run's keys are deleted, never the whole database; without it
    the local-memory cache and the embedded default's shared-state file are emptied (on
    PostgreSQL without Redis the shared state is a table, rolled back with the test)."""
    from django.core.cache import cache

    from apps.core.shared import LocalSharedState, shared_state

    if not django_settings.REDIS_URL:
        cache.clear()
        state = shared_state()
        if isinstance(state, LocalSharedState):
            with state._transaction() as connection:
                connection.execute("DELETE FROM shared")
        return
    import redis

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    prefix = django_settings.REDIS_KEY_PREFIX
    for pattern in (f"{prefix}:shared:*", f"{prefix}:1:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _fresh_state():
    """Nothing cached or counted leaks from one test to the next, in every directory. Cache keys,
    rate-limit windows and breakers are keyed by ids, and SQLite hands ids out again after each
    rollback: the drafts tests' AI calls once used up the XSS tests' limit in the embedded
    default (both failed with a rate-limited generation). The AI gateway's per-process state
    (breaker snapshots, registry, router latencies, unflushed ledger rows) is reset too."""
    from apps.ai import moderation, resilience, router
    from apps.ai.ledger import ledger
    from apps.ai.registry import registry
    from apps.core.metrics import recorder

    ledger.discard()
    recorder.discard()
    recorder.reset_sinks()
    _clear_cache_and_shared_state()
    resilience.breaker.forget()
    registry.reset()
    moderation.forget()
    router.forget_latencies()
    yield
    ledger.discard()
    recorder.discard()
    registry.reset()


# The AI providers a test runs with: only the built-in offline writer (the embedded default), or
# the platform's OpenAI key pointed at the loopback fake (the real SDK on the real wire).
NO_REMOTE_AI = {
    "OPENAI_API_KEY": "",
    "ANTHROPIC_API_KEY": "",
    "AZURE_OPENAI_API_KEY": "",
    "OPENAI_COMPATIBLE_BASE_URL": "",
    "DEFAULT_AI_PROVIDER": "",
}


@pytest.fixture
def builtin(settings):
    """Only the built-in offline writer, as in the embedded default and the demo."""
    from apps.ai.ledger import ledger
    from apps.ai.registry import registry

    for key, value in NO_REMOTE_AI.items():
        setattr(settings, key, value)
    registry.reset()
    ledger.discard()
    yield
    ledger.discard()
    registry.reset()


@pytest.fixture
def remote(settings, fake_llm):
    """The platform's OpenAI key pointed at the loopback fake, with rate limits these tests never
    reach (several calls a test, many tests a minute)."""
    from apps.ai.ledger import ledger
    from apps.ai.registry import registry

    fake_llm.reset()
    for key, value in NO_REMOTE_AI.items():
        setattr(settings, key, value)
    settings.OPENAI_API_KEY = "sk-test-fake-0123456789"
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    settings.AI_MAX_ATTEMPTS = 1
    settings.AI_RATE_LIMITS = {
        **settings.AI_RATE_LIMITS,
        "openai": {"minute": 100_000, "hour": 100_000, "day": 100_000},
    }
    registry.reset()
    ledger.discard()
    yield fake_llm
    ledger.discard()
    registry.reset()
    fake_llm.reset()


@pytest.fixture
def database_sink(settings):
    """Metrics go to the monitoring app's database rollups (MetricSample) only, starting empty:
    tests read what an operator's charts would show."""
    from apps.core import metrics
    from apps.core.metrics import recorder
    from apps.monitoring.models import MetricSample

    settings.METRICS_SINKS = ["apps.monitoring.sinks.DatabaseSink"]
    recorder.reset_sinks()
    metrics.flush()  # whatever earlier tests left in the buffer
    MetricSample.objects.all().delete()
    yield
    recorder.reset_sinks()
