"""Relay settings: command-line flags override environment variables override defaults."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from .secretbox import SecretBox, SecretKeyError
from .storage.db import DEFAULT_URL


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Everything the relay can be told."""

    db_url: str = DEFAULT_URL
    host: str = "127.0.0.1"
    port: int = 8088
    #: A report of 2,000 devices and a day of activity stays well below this.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Per home: sustained reports per second and the burst allowed (a queue flush after an
    #: outage sends many at once).
    rate_per_second: float = 2.0
    rate_burst: int = 120
    retention_days: int = 30
    admin_token: str | None = None
    #: A home's token is looked up once per this many seconds, not on every report; a revoked
    #: token stops working within this time (0: checked on every request).
    token_cache_seconds: float = 10.0
    #: Summaries and alerts are planned and sent every this many seconds (0: never).
    notify_seconds: float = 60.0
    #: An urgent alert nobody acknowledged goes to the next caregiver after this long.
    escalate_minutes: float = 15.0
    #: The relay's address as caregivers reach it, for acknowledgement links.
    public_url: str | None = None
    #: A connection must complete its request headers within this (slow or idle clients).
    header_timeout: float = 10.0
    #: A request body must arrive within this (408 otherwise).
    body_timeout: float = 30.0
    #: Open connections at most (0: the open-file limit less a reserve).
    max_connections: int = 0
    #: /metrics wants this bearer token when set.
    metrics_token: str | None = None
    #: Per client address: requests refused (401, 400, 413, 415, 422) per second, and the
    #: burst; over it, 429 before any token lookup or body read.
    refusals_per_second: float = 5.0
    refusals_burst: int = 50
    #: Over that limit the 429 comes after this many seconds: waiting costs the relay nothing,
    #: and a client that floods as fast as it is answered slows to one request per connection
    #: per delay (without it, a flood of cheap refusals still filled the relay's one core).
    refusal_delay: float = 1.0
    #: Reverse proxies whose X-Forwarded-For names the client (comma-separated addresses).
    trusted_proxies: frozenset[str] = frozenset()
    #: A log line for every request (else only refused, failed and slow ones, and a summary
    #: of the others once a minute).
    log_every_request: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        """Defaults overridden by HPOLL_RELAY_* variables."""
        return cls(
            db_url=os.environ.get("HPOLL_RELAY_DB", DEFAULT_URL),
            host=os.environ.get("HPOLL_RELAY_HOST", "127.0.0.1"),
            port=int(os.environ.get("HPOLL_RELAY_PORT", "8088")),
            max_body_bytes=int(os.environ.get("HPOLL_RELAY_MAX_BODY", str(2 * 1024 * 1024))),
            rate_per_second=_env_float("HPOLL_RELAY_RATE", 2.0),
            rate_burst=int(os.environ.get("HPOLL_RELAY_BURST", "120")),
            retention_days=int(os.environ.get("HPOLL_RELAY_RETENTION_DAYS", "30")),
            admin_token=os.environ.get("HPOLL_RELAY_ADMIN_TOKEN") or None,
            token_cache_seconds=_env_float("HPOLL_RELAY_TOKEN_CACHE_SECONDS", 10.0),
            notify_seconds=_env_float("HPOLL_RELAY_NOTIFY_SECONDS", 60.0),
            escalate_minutes=_env_float("HPOLL_RELAY_ESCALATE_MINUTES", 15.0),
            public_url=os.environ.get("HPOLL_RELAY_PUBLIC_URL") or None,
            header_timeout=_env_float("HPOLL_RELAY_HEADER_TIMEOUT", 10.0),
            body_timeout=_env_float("HPOLL_RELAY_BODY_TIMEOUT", 30.0),
            max_connections=int(os.environ.get("HPOLL_RELAY_MAX_CONNECTIONS", "0")),
            metrics_token=os.environ.get("HPOLL_RELAY_METRICS_TOKEN") or None,
            refusals_per_second=_env_float("HPOLL_RELAY_REFUSALS_PER_SECOND", 5.0),
            refusals_burst=int(os.environ.get("HPOLL_RELAY_REFUSALS_BURST", "50")),
            refusal_delay=_env_float("HPOLL_RELAY_REFUSAL_DELAY", 1.0),
            log_every_request=os.environ.get("HPOLL_RELAY_LOG_REQUESTS", "") == "all",
            trusted_proxies=frozenset(
                part.strip()
                for part in os.environ.get("HPOLL_RELAY_TRUSTED_PROXIES", "").split(",")
                if part.strip()
            ),
        )

    @property
    def key_file(self) -> Path | None:
        """Where the secret key lives when HPOLL_RELAY_SECRET_KEY is not set: the absolute
        HPOLL_RELAY_KEY_FILE, else beside a SQLite database, else nowhere (never a path
        relative to the working directory)."""
        if explicit := os.environ.get("HPOLL_RELAY_KEY_FILE"):
            path = Path(explicit)
            if not path.is_absolute():
                raise SecretKeyError(f"HPOLL_RELAY_KEY_FILE must be an absolute path, not {path}")
            return path
        if self.key_beside_database:
            return Path(str(make_url(self.db_url).database)).resolve().with_suffix(".key")
        return None

    @property
    def key_beside_database(self) -> bool:
        """Whether the key is the SQLite database's own (made on first use beside it)."""
        url = make_url(self.db_url)
        return (
            not os.environ.get("HPOLL_RELAY_KEY_FILE")
            and url.get_backend_name() == "sqlite"
            and url.database not in (None, "", ":memory:")
        )

    def secret_box(self) -> SecretBox:
        """The relay's keys (SecretKeyError, saying what to set, when there are none)."""
        return SecretBox.from_environment(self.key_file, create=self.key_beside_database)
