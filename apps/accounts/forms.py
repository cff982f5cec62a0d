"""Forms for accounts pages. They validate shape; services.py enforces the business rules."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from apps.accounts.models import PLATFORMS, Creator, Language, Role, TokenScope

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class SignupForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    agency_name = forms.CharField(
        label="Agency or creator business name", max_length=120, help_text="A solo creator can use their own name."
    )

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        candidate = _PasswordUser(self.cleaned_data.get("email", ""), self.cleaned_data.get("full_name", ""))
        password_validation.validate_password(password, candidate)
        return password


class _PasswordUser:
    """Just enough of a user for UserAttributeSimilarityValidator before the user exists."""

    def __init__(self, email: str, full_name: str) -> None:
        self.email = email
        self.full_name = full_name


class InvitationSignupForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._email = email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(
            password, _PasswordUser(self._email, self.cleaned_data.get("full_name", ""))
        )
        return password


class AgencyForm(forms.Form):
    name = forms.CharField(max_length=120)
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC")


class CreatorForm(forms.Form):
    display_name = forms.CharField(max_length=80)
    niche = forms.CharField(max_length=80, required=False, help_text="For example: fitness, cosplay, gaming.")
    persona = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)
    voice = forms.CharField(
        label="Voice description", widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000
    )
    sample_texts = forms.CharField(
        label="Sample texts",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=20000,
        help_text="One message per line, written by the creator.",
    )
    avoid_words = forms.CharField(required=False, max_length=2000, help_text="Comma-separated.")
    avoid_topics = forms.CharField(required=False, max_length=2000, help_text="Comma-separated.")
    language = forms.ChoiceField(choices=Language.choices, initial=Language.EN)
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC")
    ppv_price_min = forms.DecimalField(
        label="Lowest PPV price (USD)", min_value=Decimal("1"), max_digits=8, decimal_places=2, initial=Decimal("5")
    )
    ppv_price_max = forms.DecimalField(
        label="Highest PPV price (USD)", min_value=Decimal("1"), max_digits=8, decimal_places=2, initial=Decimal("50")
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for key, label in PLATFORMS.items():
            self.fields[f"handle_{key}"] = forms.RegexField(
                label=f"{label} handle",
                regex=r"^@?[A-Za-z0-9_.\-]{1,64}$",
                required=False,
                error_messages={"invalid": "Letters, digits, dots, dashes and underscores only."},
            )

    @classmethod
    def initial_for(cls, creator: Creator) -> dict:
        initial = {
            "display_name": creator.display_name,
            "niche": creator.niche,
            "persona": creator.persona,
            "voice": creator.voice,
            "sample_texts": "\n".join(creator.sample_texts),
            "avoid_words": ", ".join(creator.avoid_words),
            "avoid_topics": ", ".join(creator.avoid_topics),
            "language": creator.language,
            "timezone": creator.timezone,
            "ppv_price_min": creator.ppv_price_min,
            "ppv_price_max": creator.ppv_price_max,
        }
        for key in PLATFORMS:
            initial[f"handle_{key}"] = creator.handles.get(key, "")
        return initial

    def handle_fields(self):
        return [self[f"handle_{key}"] for key in PLATFORMS]

    def clean(self):
        data = super().clean()
        low, high = data.get("ppv_price_min"), data.get("ppv_price_max")
        if low is not None and high is not None and high < low:
            self.add_error("ppv_price_max", "The highest PPV price cannot be below the lowest.")
        return data

    def to_service_data(self) -> dict:
        data = self.cleaned_data
        return {
            "display_name": data["display_name"].strip(),
            "niche": data["niche"].strip(),
            "persona": data["persona"].strip(),
            "voice": data["voice"].strip(),
            "sample_texts": _lines(data["sample_texts"]),
            "avoid_words": [w.strip() for w in data["avoid_words"].split(",") if w.strip()],
            "avoid_topics": [w.strip() for w in data["avoid_topics"].split(",") if w.strip()],
            "language": data["language"],
            "timezone": data["timezone"],
            "ppv_price_min": data["ppv_price_min"],
            "ppv_price_max": data["ppv_price_max"],
            "handles": {key: data[f"handle_{key}"].lstrip("@") for key in PLATFORMS if data.get(f"handle_{key}")},
        }


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.CHATTER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AssignmentsForm(forms.Form):
    creators = forms.ModelMultipleChoiceField(
        queryset=Creator.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, creators=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creators"].queryset = creators


EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("date", "On a date…")]


class ApiTokenForm(forms.Form):
    """Name, scope (only those the member's role allows) and expiry (default 90 days)."""

    name = forms.CharField(max_length=80, help_text="What will use it, e.g. “CRM sync”.")
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        help_text="Never more than your role: a token loses power at once if your role is lowered.",
    )
    expires_in = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="90")
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only when “On a date…” is chosen: the token works until the end of that day, in your time zone; "
        "at most a year away.",
    )

    def __init__(self, *args, scopes: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if scopes is not None:
            self.fields["scope"].choices = [(value, label) for value, label in TokenScope.choices if value in scopes]

    def clean(self):
        data = super().clean()
        if data.get("expires_in") == "date" and not data.get("expires_on"):
            self.add_error("expires_on", "Choose the date the token stops working.")
        return data

    def expires_at(self) -> datetime:
        data = self.cleaned_data
        if data["expires_in"] == "date":
            # The whole chosen day, in the time zone the page shows dates in (the user's).
            return datetime.combine(data["expires_on"], time.max, tzinfo=timezone.get_current_timezone())
        return timezone.now() + timedelta(days=int(data["expires_in"]))


class SwitchForm(forms.Form):
    id = forms.IntegerField(min_value=1)


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
    )


class TotpConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class TwoFactorProofForm(forms.Form):
    proof = forms.CharField(
        label="A current code, or your password",
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


# --- Profile and account -----------------------------------------------------------------------


class ProfileForm(forms.Form):
    full_name = forms.CharField(label="Display name", max_length=150, required=False)
    timezone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Times are shown in this zone. Leave it on the default to use your agency's.",
    )
    language = forms.ChoiceField(
        label="Language",
        required=False,
        help_text="Dates, numbers and Django's own messages follow it; Huntaze's own text is English for now.",
    )
    keyboard_shortcuts = forms.BooleanField(
        label="Keyboard shortcuts",
        required=False,
        help_text="g d: dashboard, g i: inbox, /: search, ?: list of shortcuts.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from django.conf import settings

        from apps.accounts.profile import timezone_choices

        self.fields["timezone"].choices = [("", "Default (the agency's time zone)")] + [
            (name, name) for name in timezone_choices()
        ]
        self.fields["language"].choices = [("", "Default (English)"), *settings.LANGUAGES]


class AvatarForm(forms.Form):
    avatar = forms.FileField(
        label="Picture",
        help_text="PNG, JPEG, GIF or WebP, up to 5 MB. It is cropped to a square.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from django.conf import settings

        limit = settings.AVATAR_MAX_BYTES / (1024 * 1024)
        self.fields[
            "avatar"
        ].help_text = (
            f"PNG, JPEG, GIF or WebP, up to {limit:g} MB. It is cropped to a square and its metadata is removed."
        )


class AccountDeleteForm(forms.Form):
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label="Code from your authenticator app (or a recovery code)",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )
    confirmation = forms.CharField(label="Type the agency's name to close it", required=False, max_length=2000)

    def __init__(self, *args, two_factor: bool = False, closing: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not two_factor:
            del self.fields["code"]
        else:
            self.fields["code"].required = True
        if not closing:
            del self.fields["confirmation"]
        else:
            self.fields["confirmation"].required = True
            self.fields["confirmation"].label = f"Type “{closing}” to delete its data"
