# Huntaze application image: web (daphne), worker and beat all run from it (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUNTAZE_VAR_DIR=/app/var

WORKDIR /app

RUN useradd --create-home --uid 10001 --user-group huntaze

COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Static files are collected into the image (WhiteNoise serves them when DEBUG is off). Settings
# refuse to load without a SECRET_KEY and ALLOWED_HOSTS when DEBUG is off, so this step gets
# throwaway values that exist only for this RUN and are not kept in the image.
RUN DEBUG=false \
    SECRET_KEY=build-time-only-dummy-key-never-used-at-run-time-0123456789 \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && chown -R huntaze:huntaze /app/var

USER huntaze

EXPOSE 8000

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "huntaze.asgi:application"]
