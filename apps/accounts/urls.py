from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from apps.accounts import profile_views, security_views, views

app_name = "accounts"

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", security_views.LoginView.as_view(), name="login"),
    path("accounts/login/code/", security_views.login_code, name="login-code"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/form_page.html",
            extra_context={"heading": "Change your password", "button": "Change password"},
            success_url=reverse_lazy("accounts:password-change-done"),
        ),
        name="password-change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/message_page.html",
            extra_context={"heading": "Password changed", "text": "Your password was changed."},
        ),
        name="password-change-done",
    ),
    path(
        "accounts/password/reset/",
        views.PasswordResetView.as_view(
            template_name="accounts/form_page.html",
            extra_context={
                "heading": "Reset your password",
                "button": "Email me a reset link",
                "intro": "Enter the email address you log in with.",
            },
            email_template_name="accounts/email/password_reset.txt",
            subject_template_name="accounts/email/password_reset_subject.txt",
            success_url=reverse_lazy("accounts:password-reset-done"),
        ),
        name="password-reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="accounts/message_page.html",
            extra_context={
                "heading": "Check your email",
                "text": "If an account exists for that address, we sent a link to reset its password. "
                "It is valid for three days.",
            },
        ),
        name="password-reset-done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/form_page.html",
            extra_context={"heading": "Choose a new password", "button": "Set password"},
            success_url=reverse_lazy("accounts:password-reset-complete"),
        ),
        name="password-reset-confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/message_page.html",
            extra_context={"heading": "Password set", "text": "Your new password is set. You can log in now."},
        ),
        name="password-reset-complete",
    ),
    path("accounts/verify/resend/", views.email_verification_resend, name="email-verify-resend"),
    path("accounts/verify/<str:token>/", views.email_verify, name="email-verify"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("agencies/new/", views.agency_create, name="agency-create"),
    path("switch/agency/", views.switch_agency, name="switch-agency"),
    path("switch/creator/", views.switch_creator, name="switch-creator"),
    path("settings/agency/", views.agency_settings, name="agency-settings"),
    path("settings/creators/", views.creator_list, name="creator-list"),
    path("settings/creators/new/", views.creator_create, name="creator-create"),
    path("settings/creators/<int:creator_id>/", views.creator_edit, name="creator-edit"),
    path("settings/creators/<int:creator_id>/archive/", views.creator_archive, name="creator-archive"),
    path("settings/members/", views.member_list, name="member-list"),
    path("settings/members/<int:membership_id>/", views.member_edit, name="member-edit"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("settings/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("settings/api-tokens/", views.api_token_list, name="api-token-list"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("settings/agency/two-factor/", security_views.agency_two_factor, name="agency-two-factor"),
    path("settings/two-factor/", security_views.two_factor_settings, name="two-factor"),
    path("settings/two-factor/setup/", security_views.two_factor_setup, name="two-factor-setup"),
    path("settings/two-factor/disable/", security_views.two_factor_disable, name="two-factor-disable"),
    path(
        "settings/two-factor/recovery-codes/",
        security_views.recovery_codes_regenerate,
        name="two-factor-recovery-codes",
    ),
    path("settings/profile/", profile_views.profile_edit, name="profile"),
    path("settings/profile/avatar/", profile_views.avatar_update, name="profile-avatar"),
    path("settings/profile/avatar.webp", profile_views.avatar_image, name="profile-avatar-image"),
    path("settings/profile/export/", profile_views.export_status, name="data-export"),
    path("settings/profile/export/download/", profile_views.export_download, name="data-export-download"),
    path("settings/profile/delete/", profile_views.account_delete, name="account-delete"),
    path("accounts/deleted/", profile_views.account_deleted, name="account-deleted"),
    path("settings/sessions/", security_views.session_list, name="session-list"),
    path("settings/sessions/end-all/", security_views.session_end_all, name="session-end-all"),
    path("settings/sessions/<int:session_id>/end/", security_views.session_end, name="session-end"),
]
