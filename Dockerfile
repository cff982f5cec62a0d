# Huntaze application image: web (daphne), worker and beat all run from it (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUNTAZE_VAR_DIR=/app/var

WORKDIR /app

RUN useradd --create-home --uid 10001 --user-group huntaze

# requirements.lock pins the runtime dependencies only; the dev tools (pytest, ruff, playwright)
# are in requirements-dev.lock, which `make` installs, and are not in the image.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Static files are collected into the image (WhiteNoise serves them when DEBUG is off). Settings
# refuse to load without SECRET_KEY, ENCRYPTION_KEYS and ALLOWED_HOSTS when DEBUG is off, so this
# step gets throwaway values that exist only for this RUN and are not kept in the image. The
# Fernet key must still be well formed (settings check it): it is base64 of a public 32-byte
# phrase, never a secret. tests/test_dockerfile.py runs this exact step so it cannot break again.
RUN DEBUG=false \
    SECRET_KEY=build-time-only-dummy-key-never-used-at-run-time-0123456789 \
    ENCRYPTION_KEYS=YnVpbGQtdGltZS1vbmx5LW5vdC1hLXJlYWwta2V5ISE= \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && chown -R huntaze:huntaze /app/var

USER huntaze

EXPOSE 8000

# Behind a reverse proxy, override the command to add --proxy-headers (docs/configuration.md,
# "Login lockout"); it is left out here because daphne then trusts X-Forwarded-For as sent.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "huntaze.asgi:application"]
