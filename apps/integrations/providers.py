"""The OAuth 2.0 providers: how each one differs from the standard, on top of authlib.

authlib's ``OAuth2Session`` (requests transport) does the protocol: the authorization URL with
``state`` and the PKCE S256 challenge, the code exchange with the verifier, the refresh. What the
settings hold (``INTEGRATIONS_OAUTH``: URLs, client id and secret, scopes) is the operator's; what
this module holds is each provider's dialect:

- TikTok Login Kit names the client ``client_key`` (in the authorize URL and the token body),
  joins scopes with commas, and rotates refresh tokens (each refresh answers a new one, which
  replaces the old; ``refresh_expires_in`` says how long it lives).
- Reddit wants ``duration=permanent`` for a refresh token and HTTP basic client authentication.
- Instagram (business login) takes the client credentials in the form body and may wrap the token
  answer in ``{"data": [...]}``; the sign-in's token is short-lived (1 hour) and is exchanged at
  once on the Graph host for a long-lived one (``instagram_exchange``, grant ``ig_exchange_token``);
  there is no refresh token: the long-lived token is itself refreshed (``instagram_refresh``,
  grant ``ig_refresh_token``).

Not here: the publishing APIs of these platforms, and the third-party OnlyFans/Fansly API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from authlib.common.urls import add_params_to_qs
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings


@dataclass(frozen=True)
class Provider:
    platform: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    scope_separator: str = " "
    client_id_param: str = "client_id"
    auth_method: str = "client_secret_post"
    authorize_params: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def scope(self) -> str:
        return self.scope_separator.join(self.scopes)


DIALECTS: dict[str, dict] = {
    "tiktok": {"scope_separator": ",", "client_id_param": "client_key", "auth_method": "tiktok_client_key"},
    "instagram": {"scope_separator": ",", "auth_method": "client_secret_post"},
    "reddit": {"auth_method": "client_secret_basic", "authorize_params": {"duration": "permanent"}},
}


def provider_for(platform: str) -> Provider | None:
    """The provider of an OAuth platform, or None for a platform that does not use OAuth."""
    config = settings.INTEGRATIONS_OAUTH.get(platform)
    if config is None or platform not in DIALECTS:
        return None
    return Provider(
        platform=platform,
        authorize_url=config["authorize_url"],
        token_url=config["token_url"],
        client_id=config.get("client_id", ""),
        client_secret=config.get("client_secret", ""),
        scopes=tuple(config.get("scopes", ())),
        **DIALECTS[platform],
    )


def _tiktok_client_key(client, method, uri, headers, body):
    body = add_params_to_qs(body or "", [("client_key", client.client_id), ("client_secret", client.client_secret)])
    return uri, headers, body


def _unwrap_data(response):
    """Instagram's business login may answer ``{"data": [{access_token, user_id, permissions}]}``."""
    try:
        payload = response.json()
    except ValueError:
        return response
    if isinstance(payload, dict) and isinstance(payload.get("data"), list) and payload["data"]:
        token = dict(payload["data"][0])
        token.setdefault("token_type", "bearer")
        response._content = json.dumps(token).encode()
    elif isinstance(payload, dict) and "access_token" in payload and "token_type" not in payload:
        payload["token_type"] = "bearer"
        response._content = json.dumps(payload).encode()
    return response


def session_for(provider: Provider, *, redirect_uri: str) -> OAuth2Session:
    session = OAuth2Session(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=provider.auth_method,
    )
    session.register_client_auth_method(("tiktok_client_key", _tiktok_client_key))
    if provider.platform == "instagram":
        session.register_compliance_hook("access_token_response", _unwrap_data)
    return session


def authorization_url(provider: Provider, *, redirect_uri: str, state: str, code_verifier: str) -> str:
    session = session_for(provider, redirect_uri=redirect_uri)
    try:
        url, _ = session.create_authorization_url(
            provider.authorize_url, state=state, code_verifier=code_verifier, **provider.authorize_params
        )
    finally:
        session.close()
    if provider.client_id_param != "client_id":
        parts = urlsplit(url)
        query = [
            (provider.client_id_param if key == "client_id" else key, value) for key, value in parse_qsl(parts.query)
        ]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    return url


def exchange_code(provider: Provider, *, redirect_uri: str, code: str, code_verifier: str) -> dict:
    """The token answer for an authorization code (raises authlib's OAuthError or requests' errors)."""
    session = session_for(provider, redirect_uri=redirect_uri)
    try:
        return dict(
            session.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
                timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS,
            )
        )
    finally:
        session.close()


def refresh(provider: Provider, *, refresh_token: str) -> dict:
    """A fresh token answer; when the provider rotates, it carries the new refresh token."""
    session = session_for(provider, redirect_uri="")
    try:
        return dict(
            session.refresh_token(
                provider.token_url, refresh_token=refresh_token, timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS
            )
        )
    finally:
        session.close()


# Instagram Graph error codes: 190 is an expired or revoked token (the owner must sign in again),
# unless its subcode says the account itself is held (459 checkpointed, 464 unconfirmed); 368 is a
# policy block. A held or blocked account makes the connection unusable until fixed on Instagram.
INSTAGRAM_ACCOUNT_HELD_SUBCODES = {459, 464}
INSTAGRAM_BLOCKED_CODES = {368}


def instagram_exchange(provider: Provider, *, access_token: str) -> dict:
    """Exchange the short-lived token of an Instagram sign-in (1 hour, which Instagram refuses to
    refresh) for a long-lived one: ``GET <INSTAGRAM_GRAPH_URL>/access_token
    ?grant_type=ig_exchange_token&client_secret=…&access_token=…`` answers ``{access_token,
    token_type, expires_in}`` (about 60 days). Raises like ``instagram_refresh``."""
    return _instagram_graph_token(
        "access_token",
        {"grant_type": "ig_exchange_token", "client_secret": provider.client_secret, "access_token": access_token},
    )


def instagram_refresh(*, access_token: str) -> dict:
    """Refresh an Instagram long-lived token: ``GET <INSTAGRAM_GRAPH_URL>/refresh_access_token
    ?grant_type=ig_refresh_token&access_token=…`` answers ``{access_token, token_type,
    expires_in}`` (a new 60-day token). Raises authlib's ``OAuthError`` for a Graph error answer
    (``invalid_grant`` for an expired or revoked token, ``account_restricted`` for a held or blocked
    account, ``invalid_request`` otherwise), requests' errors for outages (5xx, 429, network)."""
    return _instagram_graph_token(
        "refresh_access_token", {"grant_type": "ig_refresh_token", "access_token": access_token}
    )


def _instagram_graph_token(path: str, params: dict[str, str]) -> dict:
    """One token call on the Graph host. The query carries the token (and for the exchange the
    client secret), so the HTTP errors raised here name the status only, never the URL."""
    try:
        response = requests.get(
            f"{settings.INSTAGRAM_GRAPH_URL}/{path}",
            params=params,
            timeout=settings.INTEGRATIONS_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:  # its message would quote the URL
        raise type(error)(f"Instagram could not be reached ({type(error).__name__})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise requests.HTTPError(f"Instagram answered HTTP {response.status_code}", response=response)
    payload = response.json()  # ValueError for a non-JSON answer
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code, subcode = error.get("code"), error.get("error_subcode")
        if code in INSTAGRAM_BLOCKED_CODES or (code == 190 and subcode in INSTAGRAM_ACCOUNT_HELD_SUBCODES):
            kind = "account_restricted"
        elif code == 190:
            kind = "invalid_grant"
        else:
            kind = "invalid_request"
        raise OAuthError(error=kind, description=str(error.get("message") or "")[:200])
    if response.status_code >= 400:
        raise requests.HTTPError(f"Instagram answered HTTP {response.status_code}", response=response)
    if not isinstance(payload, dict) or not payload.get("access_token"):
        raise ValueError("Instagram answered without an access token.")
    return payload
