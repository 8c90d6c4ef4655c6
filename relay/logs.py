"""Structured JSON logs, one object per line, with the request id of the request being served."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
import json
import logging
import time
from typing import Any

from aiohttp.http_exceptions import BadHttpMessage, PayloadEncodingError

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Format records as JSON; extra fields given as ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (current := request_id.get()) is not None:
            entry["request_id"] = current
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


class Throttle:
    """At most one message per ``every`` seconds about one recurring trouble: :meth:`due` says
    whether to write one now; ``suppressed`` counts the ones left out since the last written."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.suppressed = 0
        self._last = float("-inf")

    def due(self) -> int | None:
        """How many were left out before this one when a message is due now; else None (and
        this one is left out)."""
        now = time.monotonic()
        if now - self._last < self.every:
            self.suppressed += 1
            return None
        left_out, self._last, self.suppressed = self.suppressed, now, 0
        return left_out


class ClientFaultLog(logging.Filter):
    """aiohttp logs each request whose line or headers it could not parse (a header line over
    its limit, say) as an error: the client's fault, already answered 400, and one line per
    request anyone may send. They become a warning, at most one per ``every`` seconds, with how
    many were left out since the one before (a burst's last ones are told by the next)."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self._throttle = Throttle(every)

    @property
    def suppressed(self) -> int:
        """Faults left out since the last one logged."""
        return self._throttle.suppressed

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless it is a client's fault logged less than a minute after one."""
        fault = record.exc_info[1] if record.exc_info else None
        # What the parser refused in the request line or headers: a body that fails to decode
        # is met by a view, whose errors (answered 500) stay errors.
        if not isinstance(fault, BadHttpMessage) or isinstance(fault, PayloadEncodingError):
            return True
        left_out = self._throttle.due()
        if left_out is None:
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = f"{record.msg} ({left_out} more since the last message)"
        return True


def configure(level: int = logging.INFO) -> None:
    """Send every log record to stderr as JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print raw request lines; the relay logs requests itself.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    server.filters[:] = [ClientFaultLog()]
