"""Huntaze settings: one module, driven by the environment.

Everything an operator may change is read here, through django-environ, and fails fast on a bad
value. With no environment at all the project runs in the *embedded default*: SQLite under
``var/``, local-memory cache, in-memory channel layer and a Celery broker on a SQLite file, so
``make run`` works on a fresh machine. Setting ``DATABASE_URL`` and ``REDIS_URL`` switches to the
services deployment; application code never branches on the mode. docs/configuration.md lists
every variable. With DEBUG off (the default outside ``make run``/``make test``), SECRET_KEY and
ALLOWED_HOSTS must be given explicitly.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("HUNTAZE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses typos: ``DEBUG=ture`` stops the process instead of meaning False."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list, with spaces around items removed and empty items dropped."""
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


DEBUG = env_bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; in development, one generated once into var/."""
    key = env.str("SECRET_KEY", default="")
    if key:
        if not DEBUG and len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(64))') or set DEBUG=true "
            "for local development, where a key is generated into var/secret_key."
        )
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()


def _encryption_keys() -> list[str]:
    """Fernet keys for secrets at rest, newest first (see apps/core/crypto.py)."""
    keys = env_list("ENCRYPTION_KEYS", default=[])
    if keys:
        from cryptography.fernet import Fernet

        for index, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ImproperlyConfigured(f"ENCRYPTION_KEYS key #{index} is not a valid Fernet key.") from None
        return keys
    if not DEBUG:
        raise ImproperlyConfigured(
            "ENCRYPTION_KEYS is not set and DEBUG is off. Set it to a Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        )
    path = VAR_DIR / "encryption_key"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return [path.read_text().strip()]


ENCRYPTION_KEYS = _encryption_keys()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is empty: set the host names this site answers to (comma-separated).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])
for origin in CSRF_TRUSTED_ORIGINS:
    if not origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS entry {origin!r} must start with https:// (or http://)")

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "ninja",
    "csp",
    "django_otp",
    # Two factor uses its own devices (apps.accounts: AuthenticatorDevice, RecoveryCodeDevice, secrets
    # encrypted or hashed). These two plugins stay installed because accounts migration 0007 reads
    # their tables to move older devices out; they can go once that migration is squashed away.
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "apps.core",
    "apps.accounts",
    "apps.notifications",
    "apps.ai",
    "apps.delivery",
    "apps.studio",
    "apps.messaging",
    "apps.campaigns",
    "apps.monitoring",
    "apps.optimization",
    "apps.billing",
    "apps.workflows",
    "apps.integrations",
]

MIDDLEWARE = [
    "apps.monitoring.middleware.RequestMetricsMiddleware",  # first: times the whole stack (docs/metrics.md)
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.MachineEndpointMiddleware",  # providers' webhooks skip what follows (docs/integrations.md)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.accounts.middleware.TenancyMiddleware",
    "apps.core.middleware.RejectNulMiddleware",  # after tenancy: its 400 page is the full layout
    "apps.accounts.middleware.SessionActivityMiddleware",
    "apps.accounts.middleware.TwoFactorRequiredMiddleware",
    "apps.accounts.middleware.UserPreferencesMiddleware",  # the user's time zone and language (docs/profile.md)
    "axes.middleware.AxesMiddleware",
    "apps.billing.middleware.EntitlementsMiddleware",  # after tenancy: gates pages by the agency's plan
]

ROOT_URLCONF = "huntaze.urls"
# Path prefix → a URLconf of machine endpoints answered without the member-facing middleware
# (apps/core/middleware.py MachineEndpointMiddleware). Their routes are in ROOT_URLCONF too.
MACHINE_ENDPOINT_URLCONFS = {"/integrations/webhooks/": "apps.integrations.webhook_urls"}
WSGI_APPLICATION = None
ASGI_APPLICATION = "huntaze.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.tenancy",
                "apps.notifications.context_processors.notifications",
                "apps.billing.context_processors.billing_banner",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'huntaze.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web process, the worker and beat share the file
    # without "database is locked" errors under ordinary load.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-huntaze.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: the few statements on every workflow step's and event's path are prepared on each
# connection (apps/core/statements.py); every other query keeps Django's client-side binding and is
# never prepared. Off for a pooler in transaction mode that cannot keep prepared statements
# (PgBouncer before 1.22, or with max_prepared_statements = 0).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", default=True)
# Persistent connections (per thread): opening one costs more than most queries, for SQLite too.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery, locks --------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="huntaze")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX,
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 3, "socket_timeout": 3},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_KEY_PREFIX}:asgi"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}",
)
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=REDIS_URL or f"db+sqlite:///{VAR_DIR / 'celery-results.sqlite3'}",
)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"} if CELERY_BROKER_URL.startswith("redis") else {}
)
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = (
    {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"} if CELERY_RESULT_BACKEND.startswith("redis") else {}
)

# Amazon SQS as the broker (CELERY_BROKER_URL=sqs://), through kombu's SQS transport. Credentials
# and another endpoint (localstack, moto: AWS_ENDPOINT_URL_SQS) are the AWS SDK's own business,
# from its variables or the instance role; settings never see them (and could not put an endpoint
# into the URL: Celery reads CELERY_BROKER_URL from the environment itself). SQS keeps no results,
# so CELERY_RESULT_BACKEND stays Redis or the database. Queues are <SQS_QUEUE_NAME_PREFIX><queue>
# (huntaze/celery.py), created with SQS_VISIBILITY_TIMEOUT when missing; that timeout is checked
# against the tasks after the delivery settings.
SQS_REGION = env.str("SQS_REGION", default="us-east-1")
SQS_QUEUE_NAME_PREFIX = env.str("SQS_QUEUE_NAME_PREFIX", default=f"{REDIS_KEY_PREFIX}-")
SQS_VISIBILITY_TIMEOUT = env.int("SQS_VISIBILITY_TIMEOUT", default=3600)
SQS_WAIT_TIME_SECONDS = env.int("SQS_WAIT_TIME_SECONDS", default=10)
SQS_POLLING_INTERVAL = env.float("SQS_POLLING_INTERVAL", default=1.0)


def _sqs_problems() -> list[str]:
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9_-]{0,60}", SQS_QUEUE_NAME_PREFIX):
        problems.append(
            f"SQS_QUEUE_NAME_PREFIX {SQS_QUEUE_NAME_PREFIX!r} may hold only letters, digits, - and _ (60 at most)"
        )
    if not 0 <= SQS_WAIT_TIME_SECONDS <= 20:
        problems.append("SQS_WAIT_TIME_SECONDS must be between 0 and 20 (SQS's long-polling limit)")
    if SQS_POLLING_INTERVAL < 0:
        problems.append("SQS_POLLING_INTERVAL must be 0 or more seconds")
    if not 0 < SQS_VISIBILITY_TIMEOUT <= 43200:
        problems.append("SQS_VISIBILITY_TIMEOUT must be between 1 and 43200 seconds (SQS's limit)")
    if urlsplit(CELERY_BROKER_URL).hostname:  # kombu would send to http://<host>, unencrypted
        problems.append("CELERY_BROKER_URL must be sqs:// with no host (another server: AWS_ENDPOINT_URL_SQS)")
    return problems


if CELERY_BROKER_URL.startswith("sqs://"):
    if _problems := _sqs_problems():
        raise ImproperlyConfigured(f"Amazon SQS broker: {'; '.join(_problems)}.")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "region": SQS_REGION,
        "queue_name_prefix": SQS_QUEUE_NAME_PREFIX,
        "visibility_timeout": SQS_VISIBILITY_TIMEOUT,
        "wait_time_seconds": SQS_WAIT_TIME_SECONDS,
        "polling_interval": SQS_POLLING_INTERVAL,
    }

CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_RESULT_EXPIRES = 24 * 3600
# --- Events (apps/core/events.py, apps/core/outbox.py; docs/events.md) -------------------------
# How a committed event starts its dispatch: "inline" (in the publishing process right after the
# commit; the embedded default's in-memory channel layer only reaches that process's websockets),
# "worker" (a Celery task; needs a channel layer every process shares: Redis) or "sweep" (only
# beat's sweep every EVENTS_SWEEP_SECONDS).
EVENTS_DISPATCH_ON_COMMIT = env.str("EVENTS_DISPATCH_ON_COMMIT", default="inline")
if EVENTS_DISPATCH_ON_COMMIT not in ("inline", "worker", "sweep"):
    raise ImproperlyConfigured("EVENTS_DISPATCH_ON_COMMIT must be inline, worker or sweep")
EVENTS_SWEEP_SECONDS = env.int("EVENTS_SWEEP_SECONDS", default=5)
EVENTS_BATCH_SIZE = env.int("EVENTS_BATCH_SIZE", default=500)
EVENTS_LEASE_SECONDS = env.int("EVENTS_LEASE_SECONDS", default=30)
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=7)
EVENTS_SSE_POLL_SECONDS = env.float("EVENTS_SSE_POLL_SECONDS", default=0.5)
EVENTS_SSE_HEARTBEAT_SECONDS = env.float("EVENTS_SSE_HEARTBEAT_SECONDS", default=15.0)
EVENTS_SSE_MAX_SECONDS = env.float("EVENTS_SSE_MAX_SECONDS", default=300.0)
if min(EVENTS_SSE_POLL_SECONDS, EVENTS_SSE_HEARTBEAT_SECONDS, EVENTS_SSE_MAX_SECONDS) <= 0:
    raise ImproperlyConfigured(
        "EVENTS_SSE_POLL_SECONDS, EVENTS_SSE_HEARTBEAT_SECONDS and EVENTS_SSE_MAX_SECONDS must be above 0"
    )
if min(EVENTS_SWEEP_SECONDS, EVENTS_BATCH_SIZE, EVENTS_LEASE_SECONDS, EVENTS_RETENTION_DAYS) < 1:
    raise ImproperlyConfigured(
        "EVENTS_SWEEP_SECONDS, EVENTS_BATCH_SIZE, EVENTS_LEASE_SECONDS and EVENTS_RETENTION_DAYS must be at least 1"
    )

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Written into django-celery-beat's tables each time beat starts (schedule edits in the admin are
# overwritten then; disabling an entry there sticks).
CELERY_BEAT_SCHEDULE = {
    "purge-read-notifications": {"task": "apps.notifications.tasks.purge_read_notifications", "schedule": 24 * 3600},
    "purge-expired-data-exports": {"task": "apps.accounts.tasks.purge_expired_data_exports", "schedule": 3600},
    "purge-expired-shared-keys": {"task": "apps.core.tasks.purge_expired_shared_keys", "schedule": 3600},
    "sweep-deliveries": {"task": "apps.delivery.tasks.sweep_deliveries", "schedule": 60},
    "campaigns-tick": {"task": "apps.campaigns.tasks.campaigns_tick", "schedule": 10},
    # AI credits reported to Stripe's meter, and dunning's read-only switch (docs/billing.md).
    "billing-report-usage": {"task": "apps.billing.tasks.report_usage", "schedule": 3600},
    "billing-dunning": {"task": "apps.billing.tasks.dunning_tick", "schedule": 900},
    "automations-tick": {"task": "apps.campaigns.tasks.automations_tick", "schedule": 30},
    "simulate-fans": {"task": "apps.messaging.tasks.simulate_fans_tick", "schedule": 30},
    # Runs queued behind a backlog expire rather than pile up (django-celery-beat reads expire_seconds,
    # not apply_async's expires).
    "rollup-metrics": {
        "task": "apps.monitoring.tasks.rollup_metrics",
        "schedule": 300,
        "options": {"expire_seconds": 280},
    },
    "check-budgets": {"task": "apps.monitoring.tasks.check_budgets", "schedule": 300},
    # Alert firings and resolutions not told to everyone (broker down, worker died, mail server down) are
    # queued again (docs/monitoring.md).
    "redispatch-alerts": {
        "task": "apps.monitoring.tasks.redispatch_alerts",
        "schedule": 60,
        "options": {"expire_seconds": 55},
    },
    # OAuth tokens that expire within INTEGRATIONS_REFRESH_WINDOW_SECONDS are refreshed (docs/integrations.md).
    "refresh-integration-tokens": {
        "task": "apps.integrations.tasks.refresh_expiring_tokens",
        "schedule": 300,
        "options": {"expire_seconds": 280},
    },
    # Recommendations, anomalies and outcomes for every creator (apps/optimization/services.py run_nightly).
    "nightly-optimization": {
        "task": "apps.optimization.tasks.nightly_optimization",
        "schedule": crontab(hour=3, minute=30),
    },
    # Hourly anomalies (messages sent, fan replies) and service-metric anomalies (docs/optimization-anomalies.md).
    "hourly-anomalies": {
        "task": "apps.optimization.tasks.hourly_anomalies",
        "schedule": crontab(minute=5),
        "options": {"expire_seconds": 3000},
    },
    # SLO burn-rate rules (docs/monitoring.md); a late run is skipped, the next one sees the same data.
    "evaluate-slos": {
        "task": "apps.monitoring.tasks.evaluate_slos",
        "schedule": 30,
        "options": {"expire_seconds": 25},
    },
    # Messages waiting per Celery queue (celery.queue_depth); a sample older than its interval is dropped.
    "sample-queue-depth": {
        "task": "apps.monitoring.tasks.sample_queue_depth",
        "schedule": 30,
        "options": {"expire_seconds": 25},  # django-celery-beat's name for apply_async's expires
    },
    # The outbox sweep (apps/core/outbox.py): events no on-commit dispatch sent (a process died,
    # the layer was down); and the retention purge of dispatched events (docs/events.md).
    "dispatch-events": {
        "task": "apps.core.tasks.dispatch_events",
        "schedule": EVENTS_SWEEP_SECONDS,
        "options": {"expire_seconds": EVENTS_SWEEP_SECONDS},
    },
    "purge-dispatched-events": {"task": "apps.core.tasks.purge_dispatched_events", "schedule": 3600},
}
# SIMULATED fans for the demo (apps/messaging/simulation.py): beat's simulate-fans entry makes the
# demo agency's fans write, subscribe and buy every 30 s. `make run` turns it on; never in production.
SIMULATE_FANS = env_bool("SIMULATE_FANS", default=False)
# Workflows (docs/workflows.md): the recovery beat task's interval, how long a queued step may wait
# before its message is published again, the first retry's backoff, and extra definition modules.
WORKFLOW_RECOVERY_SECONDS = env.int("WORKFLOW_RECOVERY_SECONDS", default=30)
WORKFLOW_QUEUED_STALE_SECONDS = env.int("WORKFLOW_QUEUED_STALE_SECONDS", default=300)
WORKFLOW_RETRY_BACKOFF_SECONDS = env.float("WORKFLOW_RETRY_BACKOFF_SECONDS", default=2.0)
WORKFLOW_MODULES = env_list("WORKFLOW_MODULES", default=[])
CELERY_BEAT_SCHEDULE["workflows-recover"] = {
    "task": "apps.workflows.tasks.recover_workflows",
    "schedule": WORKFLOW_RECOVERY_SECONDS,
    "options": {"expire_seconds": WORKFLOW_RECOVERY_SECONDS},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep LOGGING below (JSON in production) in workers

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
INVITATION_MAX_AGE = env.int("INVITATION_MAX_AGE_DAYS", default=7) * 24 * 3600

# Login guessing: lock a username+address pair out after AXES_FAILURE_LIMIT failures.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_MINUTES", default=15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

# Two-factor sign-in (django-otp; apps/accounts/two_factor.py). After n wrong codes in a row a
# device refuses every code for 2^(n-1) seconds; a login waiting for its code also restarts at
# the password after 5 wrong codes, where the lockout above counts.
OTP_TOTP_ISSUER = "Huntaze"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# --- Email -----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Huntaze <no-reply@huntaze.local>")

# --- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): no inline script or style anywhere, so an injected
# <script> or on*= attribute never runs. Page behaviour lives in static/js/app.js, styles in
# static/css/app.css; htmx runs with allowEval and its injected indicator style turned off
# (templates/base.html). 'self' in connect-src also matches ws:/wss: to the same host (CSP 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Pages of third-party code that write inline styles and get style-src 'unsafe-inline' (never
# inline scripts): the Django admin's change lists (an inline <style> for the filter sidebar) and
# the API docs (Swagger UI styles its widgets inline). apps/core/middleware.py.
CSP_INLINE_STYLE_PATH_PREFIXES = ("/admin/", "/api/v1/docs")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Load balancers probe, and Prometheus scrapes (token or network protected), over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    if env_bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- I18n, time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# The languages a user may pick in their profile (docs/profile.md); Django's own translations
# cover forms and the admin, the product's own text is English for now.
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("it", "Italiano"),
    ("pt", "Português"),
    ("nl", "Nederlands"),
    ("pl", "Polski"),
    ("ja", "日本語"),
]
# Profile and "export my data" (docs/profile.md).
AVATAR_MAX_BYTES = env.int("AVATAR_MAX_BYTES", default=5 * 1024 * 1024)
AVATAR_MAX_PIXELS = env.int("AVATAR_MAX_PIXELS", default=25_000_000)
DATA_EXPORT_TTL_HOURS = env.int("DATA_EXPORT_TTL_HOURS", default=48)

# --- Static ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root

# --- API (django-ninja) ----------------------------------------------------------------------
NINJA_PAGINATION_CLASS = "apps.core.pagination.Pagination"  # bounded page numbers for every list

# --- AI gateway (apps/ai) ---------------------------------------------------------------------
# Platform-wide provider keys; agencies can add their own in Settings → AI providers.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_MODELS = env_list("OPENAI_MODELS", default=["gpt-4o-mini", "gpt-4o"])
AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="2024-10-21")
AZURE_OPENAI_DEPLOYMENTS = env_list("AZURE_OPENAI_DEPLOYMENTS", default=[])
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
ANTHROPIC_MODELS = env_list("ANTHROPIC_MODELS", default=["claude-haiku-4-5"])
OPENAI_COMPATIBLE_BASE_URL = env.str("OPENAI_COMPATIBLE_BASE_URL", default="")
OPENAI_COMPATIBLE_API_KEY = env.str("OPENAI_COMPATIBLE_API_KEY", default="")
OPENAI_COMPATIBLE_MODELS = env_list("OPENAI_COMPATIBLE_MODELS", default=[])
if AZURE_OPENAI_API_KEY and not (AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENTS):
    raise ImproperlyConfigured("AZURE_OPENAI_API_KEY needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENTS.")
if OPENAI_COMPATIBLE_BASE_URL and not OPENAI_COMPATIBLE_MODELS:
    raise ImproperlyConfigured("OPENAI_COMPATIBLE_BASE_URL needs OPENAI_COMPATIBLE_MODELS (comma-separated).")
# Whether an agency's own connection may point at loopback, private or link-local addresses (a
# local Ollama); on by default only in the embedded default (no DATABASE_URL). apps/ai/egress.py.
AI_ALLOW_PRIVATE_BASE_URLS = env_bool("AI_ALLOW_PRIVATE_BASE_URLS", default=not env.str("DATABASE_URL", default=""))

AI_PROVIDER_KINDS = ("openai", "azure", "anthropic", "openai_compatible", "builtin")
DEFAULT_AI_PROVIDER = env.str("DEFAULT_AI_PROVIDER", default="")
if DEFAULT_AI_PROVIDER and DEFAULT_AI_PROVIDER not in AI_PROVIDER_KINDS:
    raise ImproperlyConfigured(f"DEFAULT_AI_PROVIDER must be one of {', '.join(AI_PROVIDER_KINDS)}.")
AI_ROUTING = env.str("AI_ROUTING", default="priority")
if AI_ROUTING not in {"priority", "cost", "latency"}:
    raise ImproperlyConfigured("AI_ROUTING must be priority, cost or latency.")
# Per-feature model choice, e.g. AI_FEATURE_MODELS=studio=gpt-4o,inbox=claude-haiku-4-5
AI_FEATURE_MODELS = env.dict("AI_FEATURE_MODELS", default={})
AI_TIMEOUT_SECONDS = env.float("AI_TIMEOUT_SECONDS", default=30.0)
AI_MAX_ATTEMPTS = env.int("AI_MAX_ATTEMPTS", default=3)
AI_MAX_RETRY_AFTER_SECONDS = env.float("AI_MAX_RETRY_AFTER_SECONDS", default=20.0)
AI_MAX_INPUT_CHARS = env.int("AI_MAX_INPUT_CHARS", default=48_000)
AI_MAX_OUTPUT_TOKENS = env.int("AI_MAX_OUTPUT_TOKENS", default=8_192)
AI_CACHE_TTL_SECONDS = env.int("AI_CACHE_TTL_SECONDS", default=3600)
# Requests per window, per user and per agency, by provider kind (the providers' published tiers).
AI_RATE_LIMITS = env.json(
    "AI_RATE_LIMITS",
    default={
        "openai": {"minute": 60, "hour": 3000, "day": 10000},
        "azure": {"minute": 60, "hour": 3000, "day": 10000},
        "openai_compatible": {"minute": 60, "hour": 3000, "day": 10000},
        "anthropic": {"minute": 50, "hour": 1000, "day": 5000},
        "builtin": {"minute": 600, "hour": 20000, "day": 100000},
    },
)
AI_BREAKER = {
    "consecutive_failures": env.int("AI_BREAKER_CONSECUTIVE_FAILURES", default=5),
    "failure_rate": env.float("AI_BREAKER_FAILURE_RATE", default=0.5),
    "min_calls": env.int("AI_BREAKER_MIN_CALLS", default=20),
    "window_seconds": env.int("AI_BREAKER_WINDOW_SECONDS", default=60),
    "cooldown_seconds": env.float("AI_BREAKER_COOLDOWN_SECONDS", default=30.0),
    "half_open_probes": env.int("AI_BREAKER_HALF_OPEN_PROBES", default=1),
}
# Callables the gateway runs before each upstream call (docs/ai-gateway.md); the defaults enforce
# the plan's monthly AI credits (docs/billing.md) and the monthly budgets of apps/monitoring
# (docs/ai-cost.md).
AI_BUDGET_CHECKS = env_list(
    "AI_BUDGET_CHECKS",
    default=["apps.billing.entitlements.check_ai_credits", "apps.monitoring.budgets.check_budget"],
)
# Near a hard-stop budget's limit requests go one at a time: how long one waits for its turn, and
# how long a turn is held at most when its process dies (seconds).
AI_BUDGET_WAIT_SECONDS = env.float("AI_BUDGET_WAIT_SECONDS", default=30.0)
AI_BUDGET_LOCK_SECONDS = env.int("AI_BUDGET_LOCK_SECONDS", default=300)
if AI_BUDGET_WAIT_SECONDS < 0 or AI_BUDGET_LOCK_SECONDS < 1:
    raise ImproperlyConfigured("AI_BUDGET_WAIT_SECONDS must be >= 0 and AI_BUDGET_LOCK_SECONDS at least 1.")
# Savings advice on the AI cost page (docs/ai-cost.md): the cache hit rate worth aiming for, how much
# lower a cheaper model's draft acceptance may be, what counts as an over-long prompt (times the
# feature's median input tokens) and the error rate from which a provider's retries are advice.
AI_COST_CACHE_TARGET = env.float("AI_COST_CACHE_TARGET", default=0.25)
AI_COST_ACCEPTANCE_TOLERANCE = env.float("AI_COST_ACCEPTANCE_TOLERANCE", default=0.05)
AI_COST_LONG_PROMPT_FACTOR = env.float("AI_COST_LONG_PROMPT_FACTOR", default=2.0)
AI_COST_RETRY_ERROR_RATE = env.float("AI_COST_RETRY_ERROR_RATE", default=0.05)
if not (0 < AI_COST_CACHE_TARGET < 1 and 0 <= AI_COST_ACCEPTANCE_TOLERANCE < 1 and AI_COST_LONG_PROMPT_FACTOR > 1):
    raise ImproperlyConfigured(
        "AI_COST_CACHE_TARGET must be in (0, 1), AI_COST_ACCEPTANCE_TOLERANCE in [0, 1) and "
        "AI_COST_LONG_PROMPT_FACTOR above 1."
    )
AI_LEDGER_FLUSH_SECONDS = env.float("AI_LEDGER_FLUSH_SECONDS", default=1.0)

# --- Price exploration (docs/campaigns.md, docs/optimization-pricing.md) -------------------------
# The callable that draws each fan's PPV price for a campaign exploring prices (campaigns cannot
# import optimization, a higher feature of theirs); empty: exploring campaigns send their one price.
CAMPAIGN_PRICE_EXPLORER = env.str("CAMPAIGN_PRICE_EXPLORER", default="apps.optimization.exploration.campaign_prices")

# --- Billing (apps/billing, docs/billing.md) ---------------------------------------------------
# The module that answers entitlement questions for lower layers (apps/core/registry.py).
ENTITLEMENTS = "apps.billing.entitlements"
# The plan (its code) a new agency's trial is of.
BILLING_TRIAL_PLAN = env.str("BILLING_TRIAL_PLAN", default="agency")
if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", BILLING_TRIAL_PLAN):
    raise ImproperlyConfigured(f"BILLING_TRIAL_PLAN={BILLING_TRIAL_PLAN!r} is not a plan code (e.g. agency).")
# Stripe (docs/billing.md): online billing is on when STRIPE_SECRET_KEY is set; without it an
# administrator assigns plans by hand. STRIPE_API_BASE points the SDK elsewhere (tests' loopback fake).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_METER_EVENT_NAME = env.str("STRIPE_METER_EVENT_NAME", default="ai_credits")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
BILLING_INVOICE_CACHE_SECONDS = env.int("BILLING_INVOICE_CACHE_SECONDS", default=300)
if BILLING_GRACE_DAYS < 0 or STRIPE_WEBHOOK_TOLERANCE < 1 or BILLING_INVOICE_CACHE_SECONDS < 0:
    raise ImproperlyConfigured(
        "BILLING_GRACE_DAYS and BILLING_INVOICE_CACHE_SECONDS must be >= 0, STRIPE_WEBHOOK_TOLERANCE at least 1."
    )

# --- Metrics (apps/core/metrics.py, apps/monitoring) ------------------------------------------
# Where emit()'s metrics go, dotted paths to sink classes (docs/monitoring.md): the database rollups
# (the default), Prometheus exposition at /metrics, Amazon CloudWatch.
METRICS_SINKS = env_list("METRICS_SINKS", default=["apps.monitoring.sinks.DatabaseSink"])
METRICS_FLUSH_SECONDS = env.float("METRICS_FLUSH_SECONDS", default=10.0)
METRICS_BUFFER_MAX = env.int("METRICS_BUFFER_MAX", default=200_000)
if METRICS_FLUSH_SECONDS < 0 or METRICS_BUFFER_MAX < 1:
    raise ImproperlyConfigured("METRICS_FLUSH_SECONDS must be >= 0 and METRICS_BUFFER_MAX at least 1.")
# How long the database keeps each resolution of metric rollups, in days.
METRICS_RETENTION_DAYS = env.json("METRICS_RETENTION_DAYS", default={"minute": 3, "hour": 35, "day": 400})

# --- Alerts (apps/monitoring/alerts.py, webhooks.py; docs/monitoring.md) -------------------------
# Addresses that get every service (SLO) alert by email, besides the staff users.
MONITORING_ALERT_EMAILS = env_list("MONITORING_ALERT_EMAILS", default=[])
# Alert webhooks: per-attempt timeout, attempts in all, and the backoff between them (full jitter).
MONITORING_WEBHOOK_TIMEOUT_SECONDS = env.float("MONITORING_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
MONITORING_WEBHOOK_MAX_ATTEMPTS = env.int("MONITORING_WEBHOOK_MAX_ATTEMPTS", default=6)
MONITORING_WEBHOOK_RETRY_BASE_SECONDS = env.float("MONITORING_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
MONITORING_WEBHOOK_RETRY_MAX_SECONDS = env.float("MONITORING_WEBHOOK_RETRY_MAX_SECONDS", default=1800.0)
# Whether webhook URLs may point at loopback, private or link-local addresses (apps/ai/egress.py's
# policy); on by default only in the embedded default, like AI_ALLOW_PRIVATE_BASE_URLS.
MONITORING_WEBHOOK_ALLOW_PRIVATE = env_bool(
    "MONITORING_WEBHOOK_ALLOW_PRIVATE", default=not env.str("DATABASE_URL", default="")
)
if MONITORING_WEBHOOK_TIMEOUT_SECONDS <= 0 or MONITORING_WEBHOOK_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "MONITORING_WEBHOOK_TIMEOUT_SECONDS must be > 0 and MONITORING_WEBHOOK_MAX_ATTEMPTS >= 1."
    )

# Prometheus sink and /metrics (docs/metrics-sinks.md). Every daphne and Celery process writes its
# samples to files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode) and /metrics
# merges them. prometheus_client reads the variable when it is first imported, so it is put into
# the environment here, before anything imports it, and only when the sink is configured.
METRICS_PROMETHEUS_ENABLED = any(path.rsplit(".", 1)[-1] == "PrometheusSink" for path in METRICS_SINKS)
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus")))
if METRICS_PROMETHEUS_ENABLED:
    PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# Metric names whose Count (or Bytes) values are levels sampled now and then, not increments.
METRICS_PROMETHEUS_GAUGES = env_list("METRICS_PROMETHEUS_GAUGES", default=["celery.queue_depth"])
# Label sets one process keeps per metric; beyond it new ones are folded into label values "other".
METRICS_PROMETHEUS_MAX_SERIES = env.int("METRICS_PROMETHEUS_MAX_SERIES", default=500)
# Who may read /metrics: a bearer token, or a client address in these networks. Loopback by
# default only in development: behind a proxy on the same host (nginx adds no X-Forwarded-For
# unless told to), every visitor would come from 127.0.0.1, so production needs the token or a
# network named on purpose.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"] if DEBUG else [])
if METRICS_PROMETHEUS_MAX_SERIES < 1:
    raise ImproperlyConfigured("METRICS_PROMETHEUS_MAX_SERIES must be at least 1.")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 24 characters long (or empty for no token).")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=True)
    except ValueError as _error:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network ({_error}).") from None

# CloudWatch sink (docs/metrics-sinks.md): PutMetricData under a namespace per metric family (the
# name's first part), with an Environment dimension on every metric.
METRICS_CLOUDWATCH_NAMESPACES = env.json(
    "METRICS_CLOUDWATCH_NAMESPACES",
    default={
        "ai": "Huntaze/AI",
        "delivery": "Huntaze/Delivery",
        "http": "Huntaze/API",
        "ws": "Huntaze/API",
        "celery": "Huntaze/Tasks",
        "ratelimit": "Huntaze/RateLimiter",
    },
)
METRICS_CLOUDWATCH_NAMESPACE = env.str("METRICS_CLOUDWATCH_NAMESPACE", default="Huntaze")  # other families
METRICS_ENVIRONMENT = env.str("METRICS_ENVIRONMENT", default="development" if DEBUG else "production")
METRICS_CLOUDWATCH_ENDPOINT_URL = env.str("METRICS_CLOUDWATCH_ENDPOINT_URL", default="")  # LocalStack, tests
METRICS_CLOUDWATCH_MAX_ATTEMPTS = env.int("METRICS_CLOUDWATCH_MAX_ATTEMPTS", default=3)
AWS_REGION = env.str("AWS_REGION", default=env.str("AWS_DEFAULT_REGION", default="us-east-1"))
_CLOUDWATCH_NAMESPACE = re.compile(r"[A-Za-z0-9 ._/#:-]{1,255}")


def _cloudwatch_problems() -> list[str]:
    problems = []
    namespaces = METRICS_CLOUDWATCH_NAMESPACES
    if not isinstance(namespaces, dict) or not all(isinstance(v, str) for v in namespaces.values()):
        return ['METRICS_CLOUDWATCH_NAMESPACES must be a JSON object of family -> namespace, e.g. {"ai": "Huntaze/AI"}']
    for namespace in [*namespaces.values(), METRICS_CLOUDWATCH_NAMESPACE]:
        if not _CLOUDWATCH_NAMESPACE.fullmatch(namespace) or namespace.startswith("AWS/"):
            problems.append(f"{namespace!r} is not a CloudWatch namespace (letters, digits, ._/#:- or space; no AWS/)")
    if not 1 <= len(METRICS_ENVIRONMENT) <= 255:
        problems.append("METRICS_ENVIRONMENT must be 1 to 255 characters")
    if METRICS_CLOUDWATCH_ENDPOINT_URL and urlsplit(METRICS_CLOUDWATCH_ENDPOINT_URL).scheme not in ("http", "https"):
        problems.append("METRICS_CLOUDWATCH_ENDPOINT_URL must be an http:// or https:// URL")
    if not 1 <= METRICS_CLOUDWATCH_MAX_ATTEMPTS <= 10:
        problems.append("METRICS_CLOUDWATCH_MAX_ATTEMPTS must be between 1 and 10")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", AWS_REGION):
        problems.append(f"AWS_REGION {AWS_REGION!r} is not an AWS region such as eu-west-1")
    return problems


if _problems := _cloudwatch_problems():
    raise ImproperlyConfigured(f"CloudWatch metrics: {'; '.join(_problems)}.")


# --- Capacity advice (apps/monitoring/capacity.py, docs/capacity.md) ------------------------------
# How many processes run now (the advice compares against them), how busy they should be, and what
# one process costs. Defaults: the Procfile (one daphne; one worker pool of WORKER_CONCURRENCY
# processes for all queues) and AWS Fargate's public us-east-1 prices.
def _capacity_decimal(name: str, default: str, *, positive: bool) -> Decimal:
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise ImproperlyConfigured(f"{name}={raw!r} must be a number {'above' if positive else 'of at least'} 0.")
    return value


def _capacity_workers(raw: str) -> int | dict[str, int]:
    """A number (one pool for every queue) or queue=number pairs (dedicated workers per queue)."""
    text = raw.strip()
    if "=" not in text:
        if not text.isdigit() or int(text) < 1:
            raise ImproperlyConfigured(
                f"CAPACITY_WORKER_PROCESSES={raw!r}: use a number of at least 1 or pairs like interactive=2,default=1."
            )
        return int(text)
    counts: dict[str, int] = {}
    for pair in text.split(","):
        queue, _, count = (part.strip() for part in pair.partition("="))
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", queue) or not count.isdigit() or queue in counts:
            raise ImproperlyConfigured(
                f"CAPACITY_WORKER_PROCESSES: {pair.strip()!r} is not a queue=number pair (each queue once)."
            )
        counts[queue] = int(count)
    return counts


CAPACITY_WEB_PROCESSES = env.int("CAPACITY_WEB_PROCESSES", default=1)
CAPACITY_WORKER_PROCESSES = _capacity_workers(
    env.str("CAPACITY_WORKER_PROCESSES", default=env.str("WORKER_CONCURRENCY", default="2"))
)
CAPACITY_TARGET_UTILISATION = env.float("CAPACITY_TARGET_UTILISATION", default=0.65)
CAPACITY_LOOKBACK_DAYS = env.int("CAPACITY_LOOKBACK_DAYS", default=7)
CAPACITY_MIN_WEB_PROCESSES = env.int("CAPACITY_MIN_WEB_PROCESSES", default=2)
CAPACITY_MIN_WORKER_PROCESSES = env.int("CAPACITY_MIN_WORKER_PROCESSES", default=1)
CAPACITY_VCPU_HOUR_USD = _capacity_decimal("CAPACITY_VCPU_HOUR_USD", "0.04048", positive=False)
CAPACITY_GB_HOUR_USD = _capacity_decimal("CAPACITY_GB_HOUR_USD", "0.004445", positive=False)
CAPACITY_WEB_VCPU = _capacity_decimal("CAPACITY_WEB_VCPU", "0.5", positive=True)
CAPACITY_WEB_MEMORY_GB = _capacity_decimal("CAPACITY_WEB_MEMORY_GB", "1", positive=True)
CAPACITY_WORKER_VCPU = _capacity_decimal("CAPACITY_WORKER_VCPU", "0.5", positive=True)
CAPACITY_WORKER_MEMORY_GB = _capacity_decimal("CAPACITY_WORKER_MEMORY_GB", "1", positive=True)
if CAPACITY_WEB_PROCESSES < 1 or CAPACITY_MIN_WEB_PROCESSES < 1 or CAPACITY_MIN_WORKER_PROCESSES < 1:
    raise ImproperlyConfigured(
        "CAPACITY_WEB_PROCESSES, CAPACITY_MIN_WEB_PROCESSES and CAPACITY_MIN_WORKER_PROCESSES must be at least 1."
    )
if not 0.05 <= CAPACITY_TARGET_UTILISATION <= 1:
    raise ImproperlyConfigured(
        f"CAPACITY_TARGET_UTILISATION={CAPACITY_TARGET_UTILISATION} must be a fraction from 0.05 to 1, such as 0.65."
    )
if not 1 <= CAPACITY_LOOKBACK_DAYS <= 90:
    raise ImproperlyConfigured("CAPACITY_LOOKBACK_DAYS must be between 1 and 90.")

# --- Integrations (apps/integrations): platform connections, OAuth, webhooks --------------------
# One entry per OAuth platform; a platform whose client id is empty shows as "not configured by the
# operator" on the connect page (docs/integrations.md). The URLs are overridable for tests/proxies.
INTEGRATIONS_OAUTH = {
    "tiktok": {
        "authorize_url": env.str("TIKTOK_AUTHORIZE_URL", default="https://www.tiktok.com/v2/auth/authorize/"),
        "token_url": env.str("TIKTOK_TOKEN_URL", default="https://open.tiktokapis.com/v2/oauth/token/"),
        "client_id": env.str("TIKTOK_CLIENT_KEY", default=""),
        "client_secret": env.str("TIKTOK_CLIENT_SECRET", default=""),
        "scopes": env.list("TIKTOK_SCOPES", default=["user.info.basic", "video.upload", "video.publish"]),
    },
    "instagram": {
        "authorize_url": env.str("INSTAGRAM_AUTHORIZE_URL", default="https://www.instagram.com/oauth/authorize"),
        "token_url": env.str("INSTAGRAM_TOKEN_URL", default="https://api.instagram.com/oauth/access_token"),
        "client_id": env.str("INSTAGRAM_CLIENT_ID", default=""),
        "client_secret": env.str("INSTAGRAM_CLIENT_SECRET", default=""),
        "scopes": env.list(
            "INSTAGRAM_SCOPES", default=["instagram_business_basic", "instagram_business_content_publish"]
        ),
    },
    "reddit": {
        "authorize_url": env.str("REDDIT_AUTHORIZE_URL", default="https://www.reddit.com/api/v1/authorize"),
        "token_url": env.str("REDDIT_TOKEN_URL", default="https://www.reddit.com/api/v1/access_token"),
        "client_id": env.str("REDDIT_CLIENT_ID", default=""),
        "client_secret": env.str("REDDIT_CLIENT_SECRET", default=""),
        "scopes": env.list("REDDIT_SCOPES", default=["identity", "submit"]),
    },
}
# The callback providers send the browser back to is SITE_URL + /integrations/oauth/callback/.
INTEGRATIONS_OAUTH_STATE_SECONDS = env.int("INTEGRATIONS_OAUTH_STATE_SECONDS", default=600)
INTEGRATIONS_HTTP_TIMEOUT_SECONDS = env.float("INTEGRATIONS_HTTP_TIMEOUT_SECONDS", default=15.0)
INTEGRATIONS_REFRESH_WINDOW_SECONDS = env.int("INTEGRATIONS_REFRESH_WINDOW_SECONDS", default=3600)
INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS = env.int("INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS", default=300)
if INTEGRATIONS_OAUTH_STATE_SECONDS < 60 or INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS < 1:
    raise ImproperlyConfigured(
        "INTEGRATIONS_OAUTH_STATE_SECONDS must be at least 60 and INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS at least 1."
    )
# Inbound webhooks of a connection stored within this many seconds of its first share one queued
# drain (apps/integrations/webhooks.py); 0: one drain queued per webhook.
INTEGRATIONS_WEBHOOK_COALESCE_SECONDS = env.float("INTEGRATIONS_WEBHOOK_COALESCE_SECONDS", default=1.0)
if not 0 <= INTEGRATIONS_WEBHOOK_COALESCE_SECONDS <= 60:
    raise ImproperlyConfigured("INTEGRATIONS_WEBHOOK_COALESCE_SECONDS must be between 0 and 60.")
# Instagram long-lived tokens are refreshed at GET <this>/refresh_access_token (grant ig_refresh_token).
INSTAGRAM_GRAPH_URL = env.str("INSTAGRAM_GRAPH_URL", default="https://graph.instagram.com").rstrip("/")
# A connection whose refresh failed this many times in a row (5xx, bad configuration) becomes "broken".
INTEGRATIONS_BROKEN_AFTER_FAILURES = env.int("INTEGRATIONS_BROKEN_AFTER_FAILURES", default=5)
# CRM webhooks (docs/integrations.md "CRM webhooks"): attempts before a delivery is dead, backoff,
# timeout; http:// targets on loopback only when allowed (DEBUG, tests), private addresses likewise.
INTEGRATIONS_CRM_MAX_ATTEMPTS = env.int("INTEGRATIONS_CRM_MAX_ATTEMPTS", default=6)
INTEGRATIONS_CRM_RETRY_BASE_SECONDS = env.float("INTEGRATIONS_CRM_RETRY_BASE_SECONDS", default=10.0)
INTEGRATIONS_CRM_RETRY_MAX_SECONDS = env.float("INTEGRATIONS_CRM_RETRY_MAX_SECONDS", default=1800.0)
INTEGRATIONS_CRM_TIMEOUT_SECONDS = env.float("INTEGRATIONS_CRM_TIMEOUT_SECONDS", default=10.0)
INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = env_bool("INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP", default=DEBUG)
if INTEGRATIONS_BROKEN_AFTER_FAILURES < 1 or INTEGRATIONS_CRM_MAX_ATTEMPTS < 1 or INTEGRATIONS_CRM_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "INTEGRATIONS_BROKEN_AFTER_FAILURES and INTEGRATIONS_CRM_MAX_ATTEMPTS must be at least 1, "
        "INTEGRATIONS_CRM_TIMEOUT_SECONDS above 0."
    )
# OnlyFans/Fansly third-party API (docs/integrations.md "Connector", "Sync"): plain http to
# 127.0.0.1 only when allowed (DEBUG, tests); LOOPBACK_ONLY refuses every other address (tests).
INTEGRATIONS_API_ALLOW_LOOPBACK = env_bool("INTEGRATIONS_API_ALLOW_LOOPBACK", default=DEBUG)
INTEGRATIONS_API_LOOPBACK_ONLY = env_bool("INTEGRATIONS_API_LOOPBACK_ONLY", default=False)
# Beat starts a sync of every live API connection not synced for this long; a run whose heartbeat
# is older than the stale age was interrupted (worker killed) and the next run resumes its cursors.
INTEGRATIONS_SYNC_INTERVAL_SECONDS = env.int("INTEGRATIONS_SYNC_INTERVAL_SECONDS", default=900)
INTEGRATIONS_SYNC_STALE_SECONDS = env.int("INTEGRATIONS_SYNC_STALE_SECONDS", default=300)
INTEGRATIONS_SYNC_PAGE_SIZE = env.int("INTEGRATIONS_SYNC_PAGE_SIZE", default=500)  # items per request, 1..1000
# A first sync of a large account takes minutes (docs/benchmarks.md: 319 s for the full-size one),
# past CELERY_TASK_TIME_LIMIT: the sync task's own hard limit (its soft limit 30 s before).
INTEGRATIONS_SYNC_TIME_LIMIT = env.int("INTEGRATIONS_SYNC_TIME_LIMIT", default=1800)
if INTEGRATIONS_SYNC_INTERVAL_SECONDS < 60 or INTEGRATIONS_SYNC_STALE_SECONDS < 30 or INTEGRATIONS_SYNC_TIME_LIMIT < 60:
    raise ImproperlyConfigured(
        "INTEGRATIONS_SYNC_INTERVAL_SECONDS and INTEGRATIONS_SYNC_TIME_LIMIT must be at least 60 and "
        "INTEGRATIONS_SYNC_STALE_SECONDS at least 30."
    )
if not 1 <= INTEGRATIONS_SYNC_PAGE_SIZE <= 1000:
    raise ImproperlyConfigured("INTEGRATIONS_SYNC_PAGE_SIZE must be between 1 and 1000.")
CELERY_BEAT_SCHEDULE["integrations-sync"] = {
    "task": "apps.integrations.tasks.sync_due_connections",
    "schedule": 60,
    "options": {"expire_seconds": 55},
}
CELERY_BEAT_SCHEDULE["crm-webhooks-sweep"] = {
    "task": "apps.integrations.tasks.crm_deliveries_sweep",
    "schedule": 60,
    "options": {"expire_seconds": 55},
}
CELERY_BEAT_SCHEDULE["integrations-webhooks-sweep"] = {  # inbound webhooks whose processing task was lost
    "task": "apps.integrations.tasks.webhooks_sweep",
    "schedule": 60,
    "options": {"expire_seconds": 55},
}
# Publishing (docs/integrations.md "Publishing"): the platforms' API hosts (overridable for tests
# and proxies), TikTok's verified pull-from-URL prefixes, chunk size and privacy, and the worker's
# retry, poll and lease timings.
TIKTOK_API_URL = env.str("TIKTOK_API_URL", default="https://open.tiktokapis.com").rstrip("/")
TIKTOK_PULL_FROM_URL_PREFIXES = env.list("TIKTOK_PULL_FROM_URL_PREFIXES", default=[])
TIKTOK_UPLOAD_CHUNK_BYTES = env.int("TIKTOK_UPLOAD_CHUNK_BYTES", default=10 * 1024 * 1024)
TIKTOK_PRIVACY_LEVEL = env.str("TIKTOK_PRIVACY_LEVEL", default="PUBLIC_TO_EVERYONE")
INSTAGRAM_GRAPH_VERSION = env.str("INSTAGRAM_GRAPH_VERSION", default="v22.0")
REDDIT_API_URL = env.str("REDDIT_API_URL", default="https://oauth.reddit.com").rstrip("/")
REDDIT_USER_AGENT = env.str("REDDIT_USER_AGENT", default="web:huntaze:1.0 (by /u/huntaze)")
INTEGRATIONS_PUBLISH_MAX_ATTEMPTS = env.int("INTEGRATIONS_PUBLISH_MAX_ATTEMPTS", default=5)
INTEGRATIONS_PUBLISH_RETRY_BASE_SECONDS = env.float("INTEGRATIONS_PUBLISH_RETRY_BASE_SECONDS", default=60.0)
INTEGRATIONS_PUBLISH_POLL_SECONDS = env.float("INTEGRATIONS_PUBLISH_POLL_SECONDS", default=15.0)
INTEGRATIONS_PUBLISH_MAX_POLLS = env.int("INTEGRATIONS_PUBLISH_MAX_POLLS", default=240)
INTEGRATIONS_PUBLISH_LEASE_SECONDS = env.int("INTEGRATIONS_PUBLISH_LEASE_SECONDS", default=900)
# A publish step uploads a video of up to INTEGRATIONS_PUBLISH_MAX_VIDEO_BYTES in chunks: its task's
# hard limit, a minute inside the lease so the sweep never takes over a step still at work.
INTEGRATIONS_PUBLISH_TIME_LIMIT = max(30, INTEGRATIONS_PUBLISH_LEASE_SECONDS - 60)
INTEGRATIONS_PUBLISH_MAX_VIDEO_BYTES = env.int("INTEGRATIONS_PUBLISH_MAX_VIDEO_BYTES", default=1024 * 1024 * 1024)
# Media addresses over plain http and on private/loopback addresses (tests, local development only).
INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA = env_bool("INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA", default=False)
if (
    min(INTEGRATIONS_PUBLISH_MAX_ATTEMPTS, INTEGRATIONS_PUBLISH_MAX_POLLS) < 1
    or INTEGRATIONS_PUBLISH_POLL_SECONDS <= 0
    or INTEGRATIONS_PUBLISH_LEASE_SECONDS < 60
    or not 5 * 1024 * 1024 <= TIKTOK_UPLOAD_CHUNK_BYTES <= 64 * 1024 * 1024
):
    raise ImproperlyConfigured(
        "INTEGRATIONS_PUBLISH_MAX_ATTEMPTS and _MAX_POLLS must be at least 1, _POLL_SECONDS above 0, "
        "_LEASE_SECONDS at least 60, and TIKTOK_UPLOAD_CHUNK_BYTES between 5 MB and 64 MB (TikTok's rule)."
    )
CELERY_BEAT_SCHEDULE["publish-due-posts"] = {
    "task": "apps.integrations.tasks.publish_due_posts",
    "schedule": 60,
    "options": {"expire_seconds": 55},
}

# --- Delivery (apps/delivery): outbound messages to fans -----------------------------------------
# Platform → dotted path of its connector, e.g. onlyfans=apps.integrations.onlyfans.Connector; a
# platform not named here is served by the simulated connector (docs/delivery.md).
# OnlyFans and Fansly go through apps/integrations' third-party API connector, which keeps the
# simulated one for creators without a live connection (the demo).
DELIVERY_CONNECTORS = {
    "onlyfans": "apps.integrations.connectors.ThirdPartyApiConnector",
    "fansly": "apps.integrations.connectors.ThirdPartyApiConnector",
    **env.dict("DELIVERY_CONNECTORS", default={}),
}
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=5)
DELIVERY_RETRY_BASE_SECONDS = env.float("DELIVERY_RETRY_BASE_SECONDS", default=10.0)
DELIVERY_RETRY_MAX_SECONDS = env.float("DELIVERY_RETRY_MAX_SECONDS", default=900.0)
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=120)
DELIVERY_SWEEP_GRACE_SECONDS = env.int("DELIVERY_SWEEP_GRACE_SECONDS", default=120)
# A platform failing at least this many sends, half of a minute's sends or more, is paused for the
# cooldown, then probed with one send (apps/delivery/breaker.py).
DELIVERY_BREAKER_FAILURES = env.int("DELIVERY_BREAKER_FAILURES", default=5)
DELIVERY_BREAKER_COOLDOWN_SECONDS = env.float("DELIVERY_BREAKER_COOLDOWN_SECONDS", default=30.0)
if DELIVERY_BREAKER_FAILURES < 1 or DELIVERY_BREAKER_COOLDOWN_SECONDS <= 0:
    raise ImproperlyConfigured("DELIVERY_BREAKER_FAILURES must be at least 1 and the cooldown above 0 seconds.")
# Send rate limits, layer → {limit, seconds, burst}: `limit` sends per `seconds` on average, at most
# `burst` at once (apps/delivery/limits.py; "account:<platform>" overrides one platform's accounts).
DELIVERY_RATE_LIMITS = env.json(
    "DELIVERY_RATE_LIMITS",
    default={
        "account": {"limit": 1, "seconds": 3, "burst": 1},
        "creator": {"limit": 1, "seconds": 1, "burst": 3},
        "agency": {"limit": 25, "seconds": 1, "burst": 50},
        "global": {"limit": 500, "seconds": 1, "burst": 1000},
    },
)
if not 1 <= DELIVERY_MAX_ATTEMPTS <= 100:
    raise ImproperlyConfigured("DELIVERY_MAX_ATTEMPTS must be between 1 and 100.")
if DELIVERY_RETRY_BASE_SECONDS < 0 or DELIVERY_RETRY_MAX_SECONDS < DELIVERY_RETRY_BASE_SECONDS:
    raise ImproperlyConfigured("DELIVERY_RETRY_BASE_SECONDS must be >= 0 and at most DELIVERY_RETRY_MAX_SECONDS.")
if DELIVERY_LEASE_SECONDS < 4 or DELIVERY_SWEEP_GRACE_SECONDS < 1:
    raise ImproperlyConfigured("DELIVERY_LEASE_SECONDS must be at least 4 and DELIVERY_SWEEP_GRACE_SECONDS at least 1.")


def _rate_limit_problems(limits: object) -> list[str]:
    layers = ("account", "creator", "agency", "global")
    if not isinstance(limits, dict):
        return ["it must be a JSON object"]
    problems = [f"the {layer!r} layer is missing" for layer in layers if layer not in limits]
    for name, config in limits.items():
        if name not in layers and not name.startswith("account:"):
            problems.append(f"{name!r} is not a layer (use {', '.join(layers)} or account:<platform>)")
        elif not isinstance(config, dict) or not {"limit", "seconds"} <= set(config) <= {"limit", "seconds", "burst"}:
            problems.append(f"{name!r} must be an object with limit, seconds and optionally burst")
        elif not all(isinstance(config.get(k, 1), int) and config.get(k, 1) >= 1 for k in ("limit", "burst")):
            problems.append(f"{name!r}: limit and burst must be whole numbers of at least 1")
        elif not isinstance(config["seconds"], int | float) or config["seconds"] <= 0:
            problems.append(f"{name!r}: seconds must be a number above 0")
    return problems


if _problems := _rate_limit_problems(DELIVERY_RATE_LIMITS):
    raise ImproperlyConfigured(f"DELIVERY_RATE_LIMITS: {'; '.join(_problems)}.")

# --- Amazon SQS broker: a message is acknowledged before it turns visible again -------------------
# SQS hands a received message to another worker once it has gone SQS_VISIBILITY_TIMEOUT seconds
# without being deleted. A task still running then (up to its hard time limit), or still waiting
# for its countdown (a delivery retry), would run a second time: a no-op for the idempotent tasks,
# work done twice for the others. What holds a message longest, by name; tests/delivery/
# test_sqs_broker.py fails when a task sets itself a time limit longer than all of these.
SQS_MESSAGE_HELD_AT_MOST = {
    "CELERY_TASK_TIME_LIMIT": CELERY_TASK_TIME_LIMIT,
    "the fan import's time limit (apps/messaging/tasks.py)": 900,
    "an AI personalisation's time limit (apps/campaigns/tasks.py)": 20 * 60 + 120,
    "a platform sync's time limit, INTEGRATIONS_SYNC_TIME_LIMIT": INTEGRATIONS_SYNC_TIME_LIMIT,
    "a publish step's time limit, INTEGRATIONS_PUBLISH_LEASE_SECONDS - 60": INTEGRATIONS_PUBLISH_TIME_LIMIT,
    "the send tasks' time limit, DELIVERY_LEASE_SECONDS / 2": max(2, DELIVERY_LEASE_SECONDS // 2),
    "the longest retry countdown, DELIVERY_RETRY_MAX_SECONDS": DELIVERY_RETRY_MAX_SECONDS,
}
if CELERY_BROKER_URL.startswith("sqs://"):
    _longest, _held = max(SQS_MESSAGE_HELD_AT_MOST.items(), key=lambda item: item[1])
    if _held >= SQS_VISIBILITY_TIMEOUT:
        raise ImproperlyConfigured(
            f"SQS_VISIBILITY_TIMEOUT={SQS_VISIBILITY_TIMEOUT} must be longer than {_longest}, {_held:g} s: "
            "SQS would hand a task still at work to a second worker."
        )

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL {LOG_LEVEL!r} is not a logging level.")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "apps.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},  # "Found credentials in …" at each new SQS client
        # At DEBUG urllib3 logs each request line with its query string, where Instagram's Graph
        # API carries access tokens and the app secret (integrations): never below INFO.
        "urllib3": {"level": "INFO"},
    },
}
