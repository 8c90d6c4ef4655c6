"""Constants of the hpoll integration."""

from datetime import timedelta
import logging
from typing import Final

from .hue.const import AUTHORIZE_PATH, DEFAULT_BASE_URL, TOKEN_PATH

DOMAIN: Final = "hpoll"
LOGGER = logging.getLogger(__package__)

# Read at call time (``const.API_BASE_URL``) so tests can point the integration at the simulator.
API_BASE_URL: str = DEFAULT_BASE_URL
OAUTH2_AUTHORIZE_URL: str = DEFAULT_BASE_URL + AUTHORIZE_PATH
OAUTH2_TOKEN_URL: str = DEFAULT_BASE_URL + TOKEN_PATH

CONF_APP_KEY: Final = "app_key"
CONF_BRIDGE_ID: Final = "bridge_id"
CONF_ENTITY_GROUPS: Final = "entity_groups"
CONF_INACTIVITY_HOURS: Final = "inactivity_hours"
CONF_QUIET_START: Final = "quiet_start"
CONF_QUIET_END: Final = "quiet_end"
CONF_RELAY_ENABLED: Final = "relay_enabled"
CONF_RELAY_URL: Final = "relay_url"
CONF_RELAY_TOKEN: Final = "relay_token"  # noqa: S105 - an option key, not a secret
CONF_RELAY_HOME_ID: Final = "relay_home_id"
CONF_PUSH_INTERVAL: Final = "push_interval"

#: No activity for this long, outside quiet hours, is "inactive" (a fixed rule; see README).
DEFAULT_INACTIVITY_HOURS: Final = 3.0
DEFAULT_QUIET_START: Final = "22:00:00"
DEFAULT_QUIET_END: Final = "07:00:00"

#: One poll a minute (not user-configurable): 1,440 calls a day per bridge. Activity between
#: polls is recovered from the bridge's report timestamps, so polling faster adds little.
POLL_INTERVAL: Final = 60
#: Requests a day that all bridges sharing one Hue developer app (client id) may make between
#: them: Hue allows such an app about 50,000; the rest is headroom for sign-ins, token refreshes
#: and linking. Past 27 bridges per app the interval stretches (see coordinator.poll_interval).
DAILY_REQUEST_BUDGET: Final = 40_000

GROUP_BATTERY: Final = "battery"
GROUP_CONNECTIVITY: Final = "connectivity"
GROUP_MOTION: Final = "motion"
GROUP_ENVIRONMENT: Final = "environment"
GROUP_CONTROLS: Final = "controls"
GROUP_SECURITY: Final = "security"
GROUP_ACTIVITY: Final = "activity"
ENTITY_GROUPS: Final = (
    GROUP_ACTIVITY,
    GROUP_BATTERY,
    GROUP_CONNECTIVITY,
    GROUP_MOTION,
    GROUP_ENVIRONMENT,
    GROUP_CONTROLS,
    GROUP_SECURITY,
)
#: The push to the relay's entities: there while a relay is set up (not a user-chosen group).
GROUP_RELAY: Final = "relay"

#: The bridge unreachable this long (not a blip) raises a repair issue.
OFFLINE_REPAIR_AFTER: Final = timedelta(minutes=30)
#: Hue often sends 429 without Retry-After: back off on our own, doubling up to this.
MAX_RATE_LIMIT_BACKOFF: Final = 900.0

ISSUE_BRIDGE_OFFLINE: Final = "bridge_offline"
ISSUE_RELAY_TOKEN_REJECTED: Final = "relay_token_rejected"  # noqa: S105 - an issue id

#: Reports to the relay: what changed, batched, at most this often by default.
DEFAULT_PUSH_INTERVAL: Final = 60
MIN_PUSH_INTERVAL: Final = 60
#: No slower than the heartbeat: the relay calls a home silent after 30 minutes without a report
#: and judges activity only on reports under 15 minutes old.
MAX_PUSH_INTERVAL: Final = 600
#: A report goes out at least this often even when nothing changed: the relay tells a quiet
#: home from a silent one (HA or its internet down) by these.
HEARTBEAT: Final = timedelta(minutes=10)
#: Failed pushes are retried after 10 s, 20 s, 40 s ... up to 10 min (each with jitter).
PUSH_RETRY_BASE: Final = 10.0
PUSH_RETRY_MAX: Final = 600.0

#: Fired for every new activity the tracker recovers (automations can trigger on it).
EVENT_ACTIVITY: Final = "hpoll_activity"
EVENT_INACTIVITY_STARTED: Final = "hpoll_inactivity_started"
EVENT_INACTIVITY_ENDED: Final = "hpoll_inactivity_ended"
