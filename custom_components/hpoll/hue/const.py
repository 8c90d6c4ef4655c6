"""Addresses and limits of the Hue Remote API (the cloud route to a bridge)."""

from typing import Final

DEFAULT_BASE_URL: Final = "https://api.meethue.com"
AUTHORIZE_PATH: Final = "/v2/oauth2/authorize"
TOKEN_PATH: Final = "/v2/oauth2/token"  # noqa: S105 (a path, not a secret)
RESOURCE_PATH: Final = "/route/clip/v2/resource"
CONFIG_PATH: Final = "/route/api/0/config"
LINK_PATH: Final = "/route/api"

#: The remote route adds a cloud hop and a bridge that may be slow to answer: generous, but bounded.
REQUEST_TIMEOUT_SECONDS: Final = 20.0
#: A full listing of a large bridge is a few hundred kB; anything beyond this is not Hue.
MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
