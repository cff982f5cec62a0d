"""Settings fail fast on bad values, and a production-like environment passes check --deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROD_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-tests-only-0123456789abcdef",
    "ALLOWED_HOSTS": "huntaze.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://huntaze.example.com",
    "BEHIND_TLS_PROXY": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "ENCRYPTION_KEYS": "fRYgV1Ua5rKcWBbWcLhTvL1H8mR8Cq4fXxN7ZzTeEdA=",
}


def run_manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"}}
    clean["HUNTAZE_VAR_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_environment_passes_check_deploy(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_secret_key_when_debug_is_off(tmp_path):
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    result = run_manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL must start with redis://"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is empty"),
        ({"ENCRYPTION_KEYS": "not-a-fernet-key"}, "is not a valid Fernet key"),
        ({"LOG_LEVEL": "LOUD"}, "is not a logging level"),
        ({"CSRF_TRUSTED_ORIGINS": "huntaze.example.com"}, "must start with https://"),
        ({"DATABASE_URL": "nosuchdb://x"}, "nosuchdb"),
        ({"ENCRYPTION_KEYS": ""}, "ENCRYPTION_KEYS is not set and DEBUG is off"),
        (
            {"CELERY_BROKER_URL": "sqs://", "SQS_VISIBILITY_TIMEOUT": "600"},
            "SQS_VISIBILITY_TIMEOUT=600 must be longer than a platform sync's time limit, INTEGRATIONS_SYNC_TIME_LIMIT",
        ),
        (
            {"CELERY_BROKER_URL": "sqs://", "DELIVERY_RETRY_MAX_SECONDS": "7200"},
            "must be longer than the longest retry countdown, DELIVERY_RETRY_MAX_SECONDS, 7200 s",
        ),
        ({"CELERY_BROKER_URL": "sqs://", "SQS_QUEUE_NAME_PREFIX": "huntaze:prod"}, "may hold only letters"),
        ({"CELERY_BROKER_URL": "sqs://localhost:4566"}, "CELERY_BROKER_URL must be sqs:// with no host"),
    ],
)
def test_bad_values_fail_fast_with_a_clear_message(tmp_path, override, message):
    result = run_manage("check", env={**PROD_ENV, **override}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_default_generates_and_keeps_a_secret_key(tmp_path):
    env = {"DEBUG": "true"}
    first = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", env=env, tmp_path=tmp_path
    )
    second = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", env=env, tmp_path=tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_sqs_broker_takes_its_options_from_the_environment_and_keeps_the_result_backend(tmp_path):
    env = {
        "DEBUG": "true",
        "CELERY_BROKER_URL": "sqs://",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/2",
        "REDIS_KEY_PREFIX": "acme",
        "SQS_REGION": "eu-west-1",
        "SQS_POLLING_INTERVAL": "0.5",
    }
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.CELERY_BROKER_URL,"
        " s.CELERY_BROKER_TRANSPORT_OPTIONS, s.CELERY_RESULT_BACKEND, s.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS]))"
    )
    result = run_manage("shell", "-c", code, env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "sqs://",
        {
            "region": "eu-west-1",
            "queue_name_prefix": "acme-",  # from REDIS_KEY_PREFIX
            "visibility_timeout": 3600,
            "wait_time_seconds": 10,
            "polling_interval": 0.5,
        },
        "redis://127.0.0.1:6379/2",  # SQS keeps no results
        {"global_keyprefix": "acme:celery:"},
    ]
