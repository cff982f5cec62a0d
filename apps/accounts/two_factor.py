"""Two-factor sign-in: an authenticator app (TOTP) with ten one-time recovery codes, on
django-otp; and an agency's requirement that every member use it.

A user has two factor on when they have a confirmed ``AuthenticatorDevice``; their recovery codes
are the ``RecoveryCode`` rows of their one ``RecoveryCodeDevice``, each accepted once. Both are
our own django-otp devices (apps/accounts/models.py), not django-otp's ``TOTPDevice`` and
``StaticDevice``: those store the secrets in plain text, and a concrete model's field cannot be
swapped for an encrypted one (a subclass would keep the plain column in the parent table).

Secrets at rest: the TOTP seed is Fernet-encrypted with ``ENCRYPTION_KEYS`` (apps/core/crypto.py)
and shown only during set-up; a recovery code is stored as a salted SHA-256 and shown only when
made. Neither is ever logged. Migration ``0007_second_factor_secrets_at_rest`` moved the devices
made before out of django-otp's tables.

django-otp throttles each device (``OTP_TOTP_THROTTLE_FACTOR``, ``OTP_STATIC_THROTTLE_FACTOR``:
after n wrong codes in a row, every code is refused for 2^(n-1) seconds) and marks the session
verified. Rules the database cannot state, enforced here:

- owners and managers may turn it on, and so may every member of an agency that requires it;
- turning it off, or new recovery codes, needs a current code or the password;
- a member of an agency that requires it cannot turn it off;
- only an owner sets the requirement, and only once they use two factor themselves.

The login flow (password, then code) and the redirect to set-up live in the views and
``TwoFactorRequiredMiddleware``; API tokens are not affected (they are their own credential).
"""

from __future__ import annotations

import logging
import re
import secrets
from base64 import b32encode
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django_otp import verify_token
from django_otp.models import Device

from apps.accounts.models import (
    Agency,
    AuthenticatorDevice,
    Membership,
    RecoveryCode,
    RecoveryCodeDevice,
    Role,
    User,
    recovery_code_digest,
)
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10
TOTP_PATTERN = re.compile(r"^\d{6}$")


# --- Reads -----------------------------------------------------------------------------------


def two_factor_device(*, user: User) -> AuthenticatorDevice | None:
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()


def two_factor_enabled(*, user: User) -> bool:
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def agencies_requiring_two_factor(*, user: User) -> list[Agency]:
    return list(Agency.objects.filter(memberships__user=user, require_two_factor=True).order_by("name"))


def two_factor_allowed(*, user: User) -> bool:
    """Owners and managers may turn two factor on, and every member of an agency requiring it."""
    eligible = Q(role__in=[Role.OWNER, Role.MANAGER]) | Q(agency__require_two_factor=True)
    return two_factor_enabled(user=user) or Membership.objects.filter(eligible, user=user).exists()


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


def totp_config_url(device: AuthenticatorDevice) -> str:
    """The otpauth:// URL an authenticator app scans (Google's Key Uri Format, as django-otp's
    ``TOTPDevice.config_url`` makes it). It holds the seed: shown during set-up only."""
    issuer = str(getattr(settings, "OTP_TOTP_ISSUER", "") or "").replace(":", "")
    label = device.user.get_username()
    secret = b32encode(device.bin_key).decode()
    params = {"secret": secret, "algorithm": "SHA1", "digits": device.digits, "period": device.step}
    if issuer:
        label = f"{issuer}:{label}"
        params["issuer"] = issuer
    return f"otpauth://totp/{quote(label)}?{urlencode(params, quote_via=quote)}"


def totp_qr_data_uri(device: AuthenticatorDevice) -> str:
    """The otpauth:// URL as an SVG data URI (allowed by the policy's img-src data:)."""
    return segno.make(totp_config_url(device), error="m").svg_data_uri(scale=5, border=2)


def totp_manual_key(device: AuthenticatorDevice) -> str:
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


# --- Writes ----------------------------------------------------------------------------------


def totp_setup_start(*, user: User) -> AuthenticatorDevice:
    """A new, unconfirmed authenticator for the user to scan (any earlier unconfirmed one goes)."""
    if not two_factor_allowed(user=user):
        raise PermissionDenied("Two-factor sign-in is for owners and managers, or members of an agency requiring it.")
    AuthenticatorDevice.objects.filter(user=user, confirmed=False).delete()
    return AuthenticatorDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_setup_pending(*, user: User) -> AuthenticatorDevice | None:
    return AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


@transaction.atomic
def totp_setup_confirm(*, user: User, device: AuthenticatorDevice, code: str) -> list[str]:
    """Confirm the authenticator with a code it shows; returns the new recovery codes (shown once)."""
    device = AuthenticatorDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
    if not device.verify_is_allowed()[0]:
        raise ApplicationError("Too many wrong codes. Wait a minute and try again.", field="code")
    if not device.verify_token(_digits(code)):
        raise ApplicationError("That code is not right. Check the time on your phone and try again.", field="code")
    AuthenticatorDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    logger.info("user %s turned on two-factor sign-in", user.pk)
    return _new_recovery_codes(user=user)


@transaction.atomic
def recovery_codes_regenerate(*, user: User, proof: str) -> list[str]:
    _require_proof(user=user, proof=proof)
    return _new_recovery_codes(user=user)


@transaction.atomic
def two_factor_disable(*, user: User, proof: str) -> None:
    requiring = agencies_requiring_two_factor(user=user)
    if requiring:
        raise ApplicationError(f"{requiring[0].name} requires two-factor sign-in for all members.")
    _require_proof(user=user, proof=proof)
    AuthenticatorDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()
    logger.info("user %s turned off two-factor sign-in", user.pk)


def second_factor_verify(*, user: User, code: str) -> Device | None:
    """The device that accepts ``code``: the authenticator for six digits, else a recovery code
    (used up). None when neither does, or while the device is throttled."""
    code = code.strip()
    if TOTP_PATTERN.match(_digits(code)):
        device = two_factor_device(user=user)
        return verify_token(user, device.persistent_id, _digits(code)) if device else None
    recovery = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()
    if recovery is None:
        return None
    return verify_token(user, recovery.persistent_id, code.lower().replace(" ", "").replace("-", ""))


def second_factor_throttled(*, user: User) -> bool:
    devices = [two_factor_device(user=user), RecoveryCodeDevice.objects.filter(user=user).first()]
    return any(device is not None and not device.verify_is_allowed()[0] for device in devices)


def agency_two_factor_require(*, membership: Membership, required: bool) -> Agency:
    if membership.role != Role.OWNER:
        raise PermissionDenied("Only an owner can require two-factor sign-in.")
    if required and not two_factor_enabled(user=membership.user):
        raise ApplicationError("Turn on two-factor sign-in for yourself first.")
    agency = membership.agency
    agency.require_two_factor = required
    agency.save(update_fields=["require_two_factor"])
    logger.info("agency %s two-factor requirement set to %s by user %s", agency.pk, required, membership.user_id)
    return agency


def _digits(code: str) -> str:
    return re.sub(r"[\s-]", "", code)


def _require_proof(*, user: User, proof: str) -> None:
    """A current authenticator code or recovery code, or the account password."""
    if proof and (second_factor_verify(user=user, code=proof) or user.check_password(proof)):
        return
    raise ApplicationError("Enter a current code from your app, or your password.", field="proof")


def _new_recovery_codes(*, user: User) -> list[str]:
    """Ten new codes of 16 base32 letters (80 random bits, which makes a salted SHA-256 enough),
    returned to be shown once; only their hashes are kept."""
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [b32encode(secrets.token_bytes(10)).decode().lower() for _ in range(RECOVERY_CODE_COUNT)]
    salts = [secrets.token_hex(16) for _ in codes]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, salt=salt, digest=recovery_code_digest(code, salt=salt))
        for code, salt in zip(codes, salts, strict=True)
    )
    return codes
