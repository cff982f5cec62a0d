"""View guard: a logged-in member of an agency whose role grants a permission."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from apps.accounts.permissions import Perm, require


def member_required(perm: Perm = Perm.VIEW) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            membership = request.tenant.membership
            if membership is None:
                return redirect("accounts:agency-create")
            require(membership, perm)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
