"""Account security pages: the user's active sessions (and logging them out).

The user's own, not an agency's: reachable by any logged-in user, whatever their memberships.
Thin like the other views: parse, call one function of apps/accounts/sessions.py, render.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts import sessions


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    current = request.session.session_key
    rows = [
        {"session": row, "device": sessions.user_agent_label(row.user_agent), "current": row.session_key == current}
        for row in sessions.user_session_list(user=request.user)
    ]
    return render(request, "accounts/sessions.html", {"rows": rows, "others": sum(not r["current"] for r in rows)})


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    row = sessions.user_session_get_for_user(user=request.user, session_id=session_id)
    if row.session_key == request.session.session_key:
        logout(request)
        return redirect("accounts:login")
    sessions.user_session_end(user=request.user, user_session=row)
    messages.success(request, "That session is logged out.")
    return redirect("accounts:session-list")


@login_required
@require_POST
def session_end_all(request: HttpRequest) -> HttpResponse:
    if request.POST.get("scope") == "all":
        sessions.user_sessions_end_all(user=request.user)
        logout(request)
        return redirect("accounts:login")
    count = sessions.user_sessions_end_all(user=request.user, keep=request.session.session_key)
    messages.success(request, f"Logged out of {count} other session{'' if count == 1 else 's'}.")
    return redirect("accounts:session-list")
