"""The OAuth2 side of the Hue cloud: authorization codes, expiring access tokens, rotating refresh
tokens. Client credentials must come as HTTP Basic, as Hue's token endpoint wants them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import secrets

from .clock import Clock

#: Hue's access tokens last seven days (604800 s) less a second.
ACCESS_TOKEN_SECONDS = 604_799


class OAuthError(Exception):
    """A token request the real service would refuse; ``error`` is the RFC 6749 code."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass
class _Grant:
    client_id: str
    refresh_token: str
    access_tokens: dict[str, datetime] = field(default_factory=dict)


class OAuthServer:
    """Registered clients, outstanding codes, live tokens."""

    def __init__(
        self,
        clock: Clock,
        clients: dict[str, str] | None = None,
        access_token_seconds: int = ACCESS_TOKEN_SECONDS,
    ) -> None:
        self._clock = clock
        self.clients = dict(clients or {})
        self.access_token_seconds = access_token_seconds
        self._codes: dict[str, tuple[str, str | None]] = {}
        self._grants_by_refresh: dict[str, _Grant] = {}
        self._access: dict[str, datetime] = {}
        self.token_requests: list[str] = []

    def authorize(self, client_id: str, redirect_uri: str | None) -> str:
        """Issue a one-time authorization code (the user said yes)."""
        if client_id not in self.clients:
            raise OAuthError(400, "invalid_client", "unknown client_id")
        code = secrets.token_urlsafe(16)
        self._codes[code] = (client_id, redirect_uri)
        return code

    def client_from_basic(self, header: str | None) -> str:
        """Authenticate the client from an ``Authorization: Basic`` header."""
        if not header or not header.startswith("Basic "):
            raise OAuthError(401, "invalid_client", "client authentication must use HTTP Basic")
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise OAuthError(401, "invalid_client", "malformed Basic credentials") from err
        client_id, _, secret = decoded.partition(":")
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, secret):
            raise OAuthError(401, "invalid_client", "wrong client id or secret")
        return client_id

    def exchange_code(
        self, client_id: str, code: str, redirect_uri: str | None
    ) -> dict[str, object]:
        """``grant_type=authorization_code``: codes work once, for the client they were made for."""
        issued = self._codes.pop(code, None)
        if issued is None or issued[0] != client_id:
            raise OAuthError(400, "invalid_grant", "unknown or used authorization code")
        if issued[1] is not None and redirect_uri is not None and issued[1] != redirect_uri:
            raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
        grant = _Grant(client_id, secrets.token_urlsafe(24))
        self._grants_by_refresh[grant.refresh_token] = grant
        return self._issue(grant)

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, object]:
        """``grant_type=refresh_token``: the old refresh token dies, a new one is returned."""
        grant = self._grants_by_refresh.pop(refresh_token, None)
        if grant is None or grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "invalid or already used refresh token")
        grant.refresh_token = secrets.token_urlsafe(24)
        self._grants_by_refresh[grant.refresh_token] = grant
        return self._issue(grant)

    def issue_for_tests(self, client_id: str) -> dict[str, object]:
        """Tokens as if the user had just completed the flow."""
        return self.exchange_code(client_id, self.authorize(client_id, None), None)

    def _issue(self, grant: _Grant) -> dict[str, object]:
        token = secrets.token_urlsafe(24)
        expires = self._clock.now() + timedelta(seconds=self.access_token_seconds)
        self._access[token] = expires
        grant.access_tokens[token] = expires
        self.token_requests.append(grant.client_id)
        return {
            "access_token": token,
            "expires_in": self.access_token_seconds,
            "refresh_token": grant.refresh_token,
            "token_type": "bearer",
        }

    def check_access(self, token: str) -> str | None:
        """None if the access token is good, else the Apigee error code Hue would send."""
        expires = self._access.get(token)
        if expires is None:
            return "keymanagement.service.invalid_access_token"
        if self._clock.now() >= expires:
            return "keymanagement.service.access_token_expired"
        return None

    def expire_access_tokens(self) -> None:
        """Every access token expires now (refresh tokens stay valid)."""
        now = self._clock.now()
        for token in self._access:
            self._access[token] = now

    def revoke_all(self) -> None:
        """The user revoked the app: no token of any kind works any more."""
        self._access.clear()
        self._grants_by_refresh.clear()
        self._codes.clear()
