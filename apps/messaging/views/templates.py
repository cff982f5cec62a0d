"""Message templates: the list by category, create, edit and delete, with the variable reference
beside the editor and a preview rendered for a chosen fan (which variables fell back).

Who may write is library.py's rule (send permission for one creator's template, edit for shared
ones and other members' templates); every member reads. An unknown variable is a field error
naming it, on save and in the preview alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.core.errors import ApplicationError, form_add_error
from apps.messaging import library, selectors
from apps.messaging.forms.fans import TemplateForm, TemplatePreviewForm
from apps.messaging.models import MessageTemplate, TemplateCategory
from apps.messaging.templating import VARIABLES, template_render

PREVIEW_FANS = 50


@member_required()
def template_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    templates = selectors.template_list(membership=membership).order_by("name", "id")
    by_category: dict[str, list] = {value: [] for value in TemplateCategory.values}  # the product's order
    for template in templates:
        by_category.setdefault(template.category, []).append((template, library.can_change(membership, template)))
    labels = dict(TemplateCategory.choices)
    groups = {labels.get(category, category): items for category, items in by_category.items() if items}
    context = {"groups": groups, "can_create": has_perm(membership, Perm.SEND_MESSAGES)}
    return render(request, "messaging/templates/list.html", context)


def _preview_fans(request: HttpRequest) -> list:
    """The fans offered for the preview: the member's most valuable ones."""
    return list(selectors.fan_list(membership=request.tenant.membership)[:PREVIEW_FANS])


def _render(request: HttpRequest, form: TemplateForm, template: MessageTemplate | None, status: int = 200):
    membership = request.tenant.membership
    context = {
        "form": form,
        "template": template,
        "variables": [(name, description) for name, (description, _getter) in VARIABLES.items()],
        "preview_form": TemplatePreviewForm(fans=_preview_fans(request)),
        "can_change": template is None or library.can_change(membership, template),
    }
    return render(request, "messaging/templates/form.html", context, status=status)


def _save(request: HttpRequest, form: TemplateForm, template: MessageTemplate | None) -> MessageTemplate | None:
    membership = request.tenant.membership
    if not form.is_valid():
        return None
    data = form.cleaned_data
    creator = form.creators.get(data["creator"]) if data["creator"] else None
    try:
        if template is None:
            return library.template_create(membership=membership, name=data["name"], text=data["text"],
                                           category=data["category"], creator=creator)  # fmt: skip
        return library.template_update(membership=membership, template=template, name=data["name"],
                                       text=data["text"], category=data["category"], creator=creator)  # fmt: skip
    except ApplicationError as error:
        form_add_error(form, error)
        return None


@member_required(Perm.SEND_MESSAGES)
def template_create(request: HttpRequest) -> HttpResponse:
    creators = request.tenant.creators
    if request.method == "POST":
        form = TemplateForm(request.POST, creators=creators)
        template = _save(request, form, None)
        if template is not None:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("messaging:template_list")
        return _render(request, form, None, status=400)
    category = request.GET.get("category")
    initial = {"category": category if category in TemplateCategory.values else TemplateCategory.CUSTOM}
    return _render(request, TemplateForm(initial=initial, creators=creators), None)


@member_required()
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    membership = request.tenant.membership
    template = selectors.template_get_for_member(membership=membership, template_id=template_id)
    creators = request.tenant.creators
    if request.method == "POST":
        form = TemplateForm(request.POST, creators=creators)
        saved = _save(request, form, template)
        if saved is not None:
            messages.success(request, f"Template “{saved.name}” saved.")
            return redirect("messaging:template_list")
        template.refresh_from_db()
        return _render(request, form, template, status=400)
    initial = {"name": template.name, "category": template.category, "creator": template.creator_id,
               "text": template.text}  # fmt: skip
    return _render(request, TemplateForm(initial=initial, creators=creators), template)


@member_required()
@require_POST
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    membership = request.tenant.membership
    template = selectors.template_get_for_member(membership=membership, template_id=template_id)
    name = template.name
    library.template_delete(membership=membership, template=template)
    messages.success(request, f"Template “{name}” deleted.")
    return redirect("messaging:template_list")


@member_required()
@require_POST
def template_preview(request: HttpRequest) -> HttpResponse:
    """The text rendered for the chosen fan (htmx fragment; a page of its own without JS)."""
    form = TemplatePreviewForm(request.POST, fans=_preview_fans(request))
    context: dict = {"preview_form": form, "rendered": None, "error": None}
    if form.is_valid():
        fan = form.fans.get(form.cleaned_data["fan"]) if form.cleaned_data["fan"] else None
        text = form.cleaned_data["text"]
        if fan is None:
            context["error"] = "Choose a fan to preview the template for."
        elif not text.strip():
            context["error"] = "Write the template's text first."
        else:
            try:
                context["rendered"] = template_render(text, fan=fan, creator=fan.creator)
                context["fan"] = fan
            except ApplicationError as error:
                context["error"] = error.message
    else:
        context["error"] = "; ".join(e for errors in form.errors.values() for e in errors)
    template = "messaging/templates/preview.html#preview" if request.htmx else "messaging/templates/preview.html"
    # htmx swaps only 2xx answers: the fragment shows the error itself.
    return render(request, template, context, status=200 if context["rendered"] or request.htmx else 400)


urlpatterns = [
    path("message-templates/", template_list, name="template_list"),
    path("message-templates/new/", template_create, name="template_create"),
    path("message-templates/preview/", template_preview, name="template_preview"),
    path("message-templates/<int:template_id>/", template_edit, name="template_edit"),
    path("message-templates/<int:template_id>/delete/", template_delete, name="template_delete"),
]
