from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and tenancy"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from apps.accounts.sessions import session_ended, session_started

        # Every way in (the login form, sign-up, an accepted invitation, the second factor)
        # ends in django.contrib.auth.login, which sends this.
        user_logged_in.connect(session_started, dispatch_uid="accounts.session_started")
        user_logged_out.connect(session_ended, dispatch_uid="accounts.session_ended")
