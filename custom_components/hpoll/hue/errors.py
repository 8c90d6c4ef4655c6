"""Typed errors of the Hue Remote API client.

The client never retries on its own: each error says what went wrong so the caller (the
coordinator) decides whether to wait, back off, or ask the user to sign in again. Messages never
carry tokens or application keys.
"""

from __future__ import annotations


class HueError(Exception):
    """Base class of everything the client raises."""


class HueAuthError(HueError):
    """The access token was rejected (expired, revoked, or invalid): sign in again."""


class HueAppKeyError(HueAuthError):
    """The token is fine but the bridge no longer knows our application key: link again."""


class HueRateLimitedError(HueError):
    """The cloud answered 429. ``retry_after`` is in seconds, or None when Hue did not say."""

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        suffix = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(f"Hue Remote API rate limit reached{suffix}")


class HueBridgeOfflineError(HueError):
    """The cloud answered, but the bridge behind it did not (503/504): no data for this poll."""


class HueConnectionError(HueError):
    """The cloud could not be reached or failed: timeout, DNS, reset, or a 5xx of its own."""


class HueResponseError(HueError):
    """The answer was not what the API promises: bad JSON, wrong shape, or reported errors."""


class HueLinkError(HueError):
    """The bridge refused to create an application key (for example, link button not pressed)."""
