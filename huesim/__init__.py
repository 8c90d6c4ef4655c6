"""A faithful stand-in for the Hue cloud (api.meethue.com) for tests, the demo and benchmarks.

It serves what hpoll calls (OAuth2 authorize/token, remote link button + application key,
``/route/api/0/config`` and ``/route/clip/v2/resource``) from a real captured CLIP v2 listing, and
lets a script change the world behind it: motion at given times, batteries draining, devices
dropping off Zigbee, the bridge going offline, rate-limit bursts and expiring tokens.
"""

from .clock import Clock, ManualClock, SystemClock
from .oauth import OAuthServer
from .server import HueCloudSimulator, create_app
from .world import MotionEvent, World

__all__ = [
    "Clock",
    "HueCloudSimulator",
    "ManualClock",
    "MotionEvent",
    "OAuthServer",
    "SystemClock",
    "World",
    "create_app",
]
