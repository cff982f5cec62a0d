"""Two-factor sign-in: set-up with a QR code and a confirming code, ten recovery codes shown once,
the two-step login (password, then a real TOTP code or a recovery code once), throttling, turning
it off, and an agency owner requiring it for every member; the secrets encrypted or hashed at rest,
hidden in the admin, and the move of older devices out of django-otp's plain-text tables."""

from __future__ import annotations

import importlib
import re
import time
from base64 import b32decode, b32encode
from unittest import mock

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services, two_factor
from apps.accounts.models import (
    AuthenticatorDevice,
    RecoveryCode,
    RecoveryCodeDevice,
    UserSession,
    recovery_code_digest,
)
from apps.accounts.security_views import PENDING_MAX_AGE, PENDING_MAX_FAILURES
from tests.accounts.factories import PASSWORD

LOGIN = reverse("accounts:login")
CODE = reverse("accounts:login-code")
SETTINGS = reverse("accounts:two-factor")
SETUP = reverse("accounts:two-factor-setup")


def code_now(device: AuthenticatorDevice) -> str:
    """The code the user's app shows now. Each code is accepted once (replay protection), so the
    device's last used step is forgotten first: tests log in several times within 30 seconds."""
    AuthenticatorDevice.objects.filter(pk=device.pk).update(last_t=-1)
    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def password_step(user, client: Client | None = None, next_url: str = "") -> Client:
    client = client or Client()
    data = {"username": user.email, "password": PASSWORD}
    response = client.post(LOGIN + (f"?next={next_url}" if next_url else ""), data)
    assert response.status_code == 302, response.content
    return client


def enable(user) -> tuple[AuthenticatorDevice, list[str]]:
    device = two_factor.totp_setup_start(user=user)
    codes = two_factor.totp_setup_confirm(user=user, device=device, code=code_now(device))
    device.refresh_from_db()
    return device, codes


def is_logged_in(client: Client) -> bool:
    return client.get(reverse("accounts:session-list")).status_code == 200


def test_set_up_shows_a_qr_code_and_confirms_with_a_code_then_shows_recovery_codes_once(world, client_for):
    user = world.owner.user
    client = client_for(world.owner)
    other = client_for(world.owner)
    assert "Set up two-factor sign-in" in client.get(SETTINGS).content.decode()
    assert client.post(SETUP)["Location"] == SETUP
    page = client.get(SETUP).content.decode()
    assert re.search(r'<img src="data:image/svg\+xml;charset=utf-8,[^"]+" alt="QR code', page)
    device = AuthenticatorDevice.objects.get(user=user, confirmed=False)
    manual = re.search(r'<code id="manual-key">([A-Z2-7 ]+)</code>', page).group(1)
    assert manual.replace(" ", "") == two_factor.totp_manual_key(device).replace(" ", "")

    wrong = client.post(SETUP, {"code": "000000" if code_now(device) != "000000" else "111111"})
    assert "That code is not right" in wrong.content.decode()
    assert not two_factor.two_factor_enabled(user=user)

    response = client.post(SETUP, {"code": code_now(device)})
    html = response.content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", html)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert response["Cache-Control"] == "no-store"
    assert two_factor.two_factor_enabled(user=user)
    stored = list(RecoveryCode.objects.filter(device__user=user))
    assert len(stored) == 10
    assert all(any(recovery_code_digest(code, salt=row.salt) == row.digest for row in stored) for code in codes)
    # Shown once: the settings page later only counts them.
    later = client.get(SETTINGS).content.decode()
    assert codes[0] not in later and "10 recovery codes left" in later
    # This session is verified and stays; the user's other sessions are logged out.
    assert is_logged_in(client) and not is_logged_in(other)


def test_chatters_and_viewers_are_not_offered_two_factor_unless_required(world, client_for):
    client = client_for(world.chatter)
    assert "for owners and managers" in client.get(SETTINGS).content.decode()
    client.post(SETUP)
    assert not AuthenticatorDevice.objects.filter(user=world.chatter.user).exists()
    world.agency.require_two_factor = True
    world.agency.save()
    client.post(SETUP)
    assert AuthenticatorDevice.objects.filter(user=world.chatter.user, confirmed=False).exists()


def test_login_needs_the_code_after_the_password(world):
    user = world.manager.user
    device, _ = enable(user)
    client = password_step(user)
    assert client.get(reverse("core:dashboard")).status_code == 302  # not logged in yet
    assert not UserSession.objects.filter(user=user).exists()
    assert client.get(CODE).status_code == 200
    response = client.post(CODE, {"code": code_now(device)})
    assert response["Location"] == reverse("core:dashboard")
    assert client.get(reverse("core:dashboard")).status_code == 200
    assert UserSession.objects.filter(user=user, session_key=client.session.session_key).exists()
    assert client.session["otp_device_id"] == device.persistent_id


def test_users_without_two_factor_log_in_with_the_password_alone(world):
    client = password_step(world.owner.user)
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_a_code_is_accepted_only_once(world):
    user = world.manager.user
    device, _ = enable(user)
    code = code_now(device)
    first = password_step(user)
    assert first.post(CODE, {"code": code})["Location"] == reverse("core:dashboard")
    second = password_step(user)
    assert "That code is not right" in second.post(CODE, {"code": code}).content.decode()


def test_a_recovery_code_works_once(world):
    user = world.manager.user
    _, codes = enable(user)
    client = password_step(user)
    response = client.post(CODE, {"code": codes[0].upper()}, follow=True)
    assert "You used a recovery code; 9 left." in response.content.decode()
    again = password_step(user)
    assert "That code is not right" in again.post(CODE, {"code": codes[0]}).content.decode()


def test_wrong_codes_are_throttled_then_the_login_restarts(world):
    user = world.manager.user
    device, _ = enable(user)
    client = password_step(user)
    for _ in range(3):
        client.post(CODE, {"code": "12345x"})  # not six digits: tried as a recovery code
        client.post(CODE, {"code": "999999" if code_now(device) != "999999" else "888888"})
    # Six wrong answers reached the limit: back to the password.
    assert PENDING_MAX_FAILURES <= 6
    assert client.get(CODE)["Location"] == LOGIN


def test_a_throttled_device_refuses_even_the_right_code(world):
    user = world.manager.user
    device, _ = enable(user)
    client = password_step(user)
    for _ in range(3):
        client.post(CODE, {"code": "999999" if code_now(device) != "999999" else "888888"})
    response = client.post(CODE, {"code": code_now(device)})
    assert "Too many wrong codes in a row" in response.content.decode()
    AuthenticatorDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert client.post(CODE, {"code": code_now(device)})["Location"] == reverse("core:dashboard")


def test_the_code_step_times_out(world):
    user = world.manager.user
    device, _ = enable(user)
    client = password_step(user)
    with mock.patch("apps.accounts.security_views.time.time", return_value=time.time() + PENDING_MAX_AGE + 1):
        response = client.post(CODE, {"code": code_now(device)})
    assert response["Location"] == LOGIN
    assert not is_logged_in(client)


def test_the_code_page_without_a_password_step_goes_to_login(db):
    assert Client().get(CODE)["Location"] == LOGIN


def test_next_is_kept_but_never_leaves_the_site(world):
    user = world.manager.user
    device, _ = enable(user)
    client = password_step(user, next_url="/settings/creators/")
    assert client.post(CODE, {"code": code_now(device)})["Location"] == "/settings/creators/"
    client = password_step(user, next_url="https://evil.example/")
    assert client.post(CODE, {"code": code_now(device)})["Location"] == reverse("core:dashboard")


def test_the_login_lockout_still_counts_wrong_passwords(world, settings):
    user = world.manager.user
    enable(user)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(LOGIN, {"username": user.email, "password": "wrong"})
    assert response.status_code == 429
    assert client.post(LOGIN, {"username": user.email, "password": PASSWORD}).status_code == 429


def test_turning_off_needs_a_code_or_the_password(world, client_for):
    user = world.owner.user
    device, _ = enable(user)
    client = client_for(world.owner)
    response = client.post(reverse("accounts:two-factor-disable"), {"disable-proof": "not-it"})
    assert "Enter a current code from your app, or your password." in response.content.decode()
    assert two_factor.two_factor_enabled(user=user)
    client.post(reverse("accounts:two-factor-disable"), {"disable-proof": code_now(device)})
    assert not two_factor.two_factor_enabled(user=user)
    assert not RecoveryCode.objects.filter(device__user=user).exists()


def test_new_recovery_codes_replace_the_old_ones(world, client_for):
    user = world.owner.user
    _, old = enable(user)
    client = client_for(world.owner)
    response = client.post(reverse("accounts:two-factor-recovery-codes"), {"regenerate-proof": PASSWORD})
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert two_factor.recovery_codes_left(user=user) == 10


# --- An agency requiring two factor ------------------------------------------------------------


def test_only_an_owner_with_two_factor_can_require_it(world, client_for):
    url = reverse("accounts:agency-two-factor")
    assert client_for(world.manager).post(url, {"require_two_factor": "on"}).status_code == 403
    owner = client_for(world.owner)
    response = owner.post(url, {"require_two_factor": "on"}, follow=True)
    assert "Turn on two-factor sign-in for yourself first." in response.content.decode()
    world.agency.refresh_from_db()
    assert not world.agency.require_two_factor
    enable(world.owner.user)
    owner.post(url, {"require_two_factor": "on"})
    world.agency.refresh_from_db()
    assert world.agency.require_two_factor


@pytest.fixture
def strict_agency(world):
    enable(world.owner.user)
    two_factor.agency_two_factor_require(membership=world.owner, required=True)
    return world


def test_members_without_two_factor_are_sent_to_set_it_up(strict_agency):
    world = strict_agency
    client = password_step(world.chatter.user)  # logged in with the password: no device yet
    response = client.get(reverse("accounts:creator-list"))
    assert response["Location"] == SETTINGS + "?next=%2Fsettings%2Fcreators%2F"
    assert "requires two-factor sign-in" in client.get(SETTINGS).content.decode()
    assert client.get(reverse("core:dashboard")).status_code == 302
    # The session API is refused too; API tokens are their own credential and still work.
    api = client.get("/api/v1/creators")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"
    _, secret = services.api_token_create(membership=world.chatter, name="integration")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/creators").status_code == 200
    # A header that is not a live token does not get the held session past the requirement.
    for header in ("Bearer x", "Basic eDp5", f"Bearer {secret}x"):
        api = client.get("/api/v1/creators", HTTP_AUTHORIZATION=header)
        assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required", header
    assert client.get("/api/v1/creators", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

    client.post(SETUP)
    device = AuthenticatorDevice.objects.get(user=world.chatter.user, confirmed=False)
    page = client.post(SETUP, {"code": code_now(device), "next": "/settings/creators/"}).content.decode()
    assert 'href="/settings/creators/">Continue</a>' in page
    assert client.get(reverse("accounts:creator-list")).status_code == 200
    assert client.get("/api/v1/creators").status_code == 200


def test_members_with_two_factor_pass_after_the_code(strict_agency):
    world = strict_agency
    device, _ = enable(world.manager.user)
    client = password_step(world.manager.user)
    client.post(CODE, {"code": code_now(device)})
    assert client.get(reverse("accounts:creator-list")).status_code == 200


def test_a_required_member_cannot_turn_it_off(strict_agency, client_for):
    world = strict_agency
    client = password_step(world.owner.user)
    device = two_factor.two_factor_device(user=world.owner.user)
    client.post(CODE, {"code": code_now(device)})
    response = client.post(reverse("accounts:two-factor-disable"), {"disable-proof": PASSWORD})
    assert "Velvet requires it, so it cannot be turned off." in response.content.decode()
    assert two_factor.two_factor_enabled(user=world.owner.user)


def test_other_agencies_of_the_member_are_not_affected(strict_agency, other_world):
    from apps.accounts.middleware import SESSION_AGENCY
    from tests.accounts.factories import MembershipFactory

    world = strict_agency
    MembershipFactory(agency=other_world.agency, user=world.chatter.user, role="viewer")
    client = password_step(world.chatter.user)
    session = client.session
    session[SESSION_AGENCY] = other_world.agency.pk
    session.save()
    assert client.get(reverse("accounts:creator-list")).status_code == 200


# --- Secrets at rest ---------------------------------------------------------------------------

MIGRATION = importlib.import_module("apps.accounts.migrations.0007_second_factor_secrets_at_rest")


def raw_rows(model) -> str:
    """Every column of every row of the model's table as the database holds it: no field
    decrypts anything on the way."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
        return repr(cursor.fetchall())


def seed_shown(page: str) -> bytes:
    """The seed as the set-up page gives it to the user (the key to type by hand)."""
    manual = re.search(r'<code id="manual-key">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    return b32decode(manual + "=" * (-len(manual) % 8))


def app_code(seed: bytes, *, at_step: int | None = None) -> str:
    """What an authenticator app holding ``seed`` shows now, or at the 30-second step ``at_step``."""
    drift = 0 if at_step is None else at_step - int(time.time()) // 30
    return f"{totp(seed, drift=drift):06d}"


def test_the_database_and_the_logs_hold_neither_the_seed_nor_the_recovery_codes(world, client_for, caplog):
    caplog.set_level("DEBUG")
    user = world.owner.user
    client = client_for(world.owner)
    client.post(SETUP)
    seed = seed_shown(client.get(SETUP).content.decode())
    page = client.post(SETUP, {"code": app_code(seed)}).content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", page)
    assert len(codes) == 10
    manual = b32encode(seed).decode()
    secrets_shown = [seed.hex(), seed.hex().upper(), manual, manual.lower(), *codes, *(c.upper() for c in codes)]

    stored = raw_rows(AuthenticatorDevice) + raw_rows(RecoveryCode)
    assert AuthenticatorDevice.objects.get(user=user).bin_key == seed  # it is stored, encrypted
    assert [secret for secret in secrets_shown if secret in stored] == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert [secret for secret in secrets_shown if secret in logged] == []


def test_a_code_from_the_app_signs_in_and_the_same_code_is_refused_after(world, client_for):
    user = world.manager.user
    client = client_for(world.manager)
    client.post(SETUP)
    seed = seed_shown(client.get(SETUP).content.decode())
    client.post(SETUP, {"code": app_code(seed)})
    assert two_factor.two_factor_enabled(user=user)
    # Set-up used up the current code; the app's next one is within the step of tolerance.
    code = app_code(seed, at_step=AuthenticatorDevice.objects.get(user=user).last_t + 1)
    first = password_step(user)
    assert first.post(CODE, {"code": code})["Location"] == reverse("core:dashboard")
    replay = password_step(user)
    assert "That code is not right" in replay.post(CODE, {"code": code}).content.decode()
    assert not is_logged_in(replay)


def test_a_recovery_code_is_used_up_even_by_two_requests_at_once(world):
    user = world.manager.user
    _, codes = enable(user)
    # The second request read the codes before the first used one up.
    late = RecoveryCodeDevice.objects.prefetch_related("codes").get(user=user)
    assert RecoveryCodeDevice.objects.get(user=user).verify_token(codes[3])
    assert not late.verify_token(codes[3])
    assert two_factor.recovery_codes_left(user=user) == 9


def test_wrong_recovery_codes_are_throttled(world, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 60  # a minute's wait, longer than this test
    user = world.manager.user
    _, codes = enable(user)
    client = password_step(user)
    assert "That code is not right" in client.post(CODE, {"code": "aaaaaaaaaaaaaaaa"}).content.decode()
    assert "Too many wrong codes in a row" in client.post(CODE, {"code": codes[0]}).content.decode()
    assert two_factor.recovery_codes_left(user=user) == 10  # refused, not used up
    RecoveryCodeDevice.objects.filter(user=user).update(throttling_failure_count=0)
    assert client.post(CODE, {"code": codes[0]})["Location"] == reverse("core:dashboard")


def test_the_admin_never_shows_the_seed_or_the_recovery_codes(world):
    user = world.owner.user
    user.is_staff = user.is_superuser = True
    user.save()
    device, codes = enable(user)
    recovery = RecoveryCodeDevice.objects.get(user=user)
    secrets_shown = [device.key, b32encode(device.bin_key).decode(), *codes, *(c.digest for c in recovery.codes.all())]
    client = Client()
    client.force_login(user)
    for url in [
        reverse("admin:accounts_authenticatordevice_changelist"),
        reverse("admin:accounts_authenticatordevice_change", args=[device.pk]),
        reverse("admin:accounts_recoverycodedevice_changelist"),
        reverse("admin:accounts_recoverycodedevice_change", args=[recovery.pk]),
        reverse("admin:accounts_recoverycode_changelist"),
        reverse("admin:accounts_recoverycode_change", args=[recovery.codes.first().pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert [secret for secret in secrets_shown if secret in html] == [], url
    assert (
        '<td class="field-codes_left">10</td>'
        in client.get(reverse("admin:accounts_recoverycodedevice_changelist")).content.decode()
    )
    # django-otp's own device admins (plain seed, QR code, codes) are not offered.
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404


def test_the_migration_moves_plain_devices_and_the_old_authenticator_still_signs_in(world, client_for):
    user = world.owner.user
    seed = bytes.fromhex("3132333435363738393031323334353637383930")
    old = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True, key=seed.hex())
    TOTPDevice.objects.create(user=world.manager.user, name="Authenticator app", confirmed=False)
    static = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    StaticToken.objects.bulk_create(StaticToken(device=static, token=token) for token in ["abcdefgh", "ijklmnop"])
    # A browser that signed in with the old authenticator, in an agency requiring two factor.
    world.agency.require_two_factor = True
    world.agency.save()
    browser = client_for(world.owner)
    session = browser.session
    session["otp_device_id"] = old.persistent_id
    session.save()
    assert browser.get(reverse("accounts:creator-list")).status_code == 200

    MIGRATION.forwards(django_apps, None)

    assert not (TOTPDevice.objects.exists() or StaticDevice.objects.exists() or StaticToken.objects.exists())
    device = AuthenticatorDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key == seed
    assert not AuthenticatorDevice.objects.get(user=world.manager.user).confirmed
    stored = raw_rows(AuthenticatorDevice) + raw_rows(RecoveryCode)
    assert seed.hex() not in stored and "abcdefgh" not in stored and "ijklmnop" not in stored
    # Still verified: the session follows the device to its new table.
    assert browser.get(reverse("accounts:creator-list")).status_code == 200
    # The authenticator app set up before the move signs in, and an old recovery code, once.
    client = password_step(user)
    assert client.post(CODE, {"code": app_code(seed)})["Location"] == reverse("core:dashboard")
    assert password_step(user).post(CODE, {"code": "ABCD-EFGH"})["Location"] == reverse("core:dashboard")
    assert "That code is not right" in password_step(user).post(CODE, {"code": "abcdefgh"}).content.decode()
    assert two_factor.recovery_codes_left(user=user) == 1


def test_the_migration_reverses_to_plain_authenticators_but_cannot_restore_recovery_codes(world):
    user = world.owner.user
    device, _ = enable(user)
    MIGRATION.backwards(django_apps, None)
    old = TOTPDevice.objects.get(user=user)
    assert old.confirmed and old.bin_key == device.bin_key and old.last_t == device.last_t
    assert not (AuthenticatorDevice.objects.exists() or RecoveryCodeDevice.objects.exists())
