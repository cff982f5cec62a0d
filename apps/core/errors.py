"""Domain errors.

Services raise ``ApplicationError`` (or a subclass) for a rule the user broke; the API turns it
into the one JSON error shape (huntaze/api.py) and views into a form error or flash message.
"Not found" and "not yours" are both Django's ``Http404``; "not allowed" is ``PermissionDenied``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.utils.html import format_html


class ApplicationError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class ConflictError(ApplicationError):
    status_code = 409
    code = "conflict"


def form_add_error(form, error: ApplicationError) -> None:
    """Show a service's ApplicationError on the form: on its field when the form has it. An
    error that carries an ``upgrade_url`` (a plan limit) links to it."""
    field = error.field if error.field in getattr(form, "fields", {}) else None
    upgrade_url = error.extra.get("upgrade_url")
    if upgrade_url:
        form.add_error(field, format_html('{} <a href="{}">See plans</a>', error.message, upgrade_url))
    else:
        form.add_error(field, error.message)


@contextmanager
def fields_renamed(names: Mapping[str, str]) -> Iterator[None]:
    """An ApplicationError raised inside names its field as ``names`` maps it, so a service's
    ``creator`` reaches an API client as the body's ``creator_id``; other fields pass through."""
    try:
        yield
    except ApplicationError as error:
        error.field = names.get(error.field, error.field)
        raise
