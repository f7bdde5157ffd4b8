"""Structured logs: one JSON object per line, with the request id and job id end to end.

A request's id (from a sane `X-Request-Id`, else a fresh one) is set in a context
variable by the app (gateway/app.py), echoed in the response header, written into
the meta of every RQ job queued while it is set (gateway/delivery/queues.py), and
set again by the worker around that job (gateway/worker.py), with the job's id.
`JsonFormatter` writes both on every line, with the `report_id`/`dispatch_id` a
log call passes in `extra`. Messages are SafeGrid's own, already free of personal
data (phones masked, no names or texts: docs/security.md); this module adds only
ids, never a path, query string or header value other than a checked request id.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "safegrid_request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "safegrid_job_id", default=None)

# Letters, digits and -_.: a UUID, a hex id, nginx's $request_id. Anything else (too long,
# spaces, a phone number with +) is replaced by a fresh id rather than written to the logs.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{7,63}")
_IDS = ("report_id", "dispatch_id")


def accept_request_id(header: str | None) -> str:
    """The caller's request id when it looks like one, else a new one.

    An id of digits only (with separators) is refused too: it could be a phone number."""
    if header and _SANE.fullmatch(header) and not re.fullmatch(r"[\d_.-]+", header):
        return header
    return secrets.token_hex(16)


@contextlib.contextmanager
def under(request: str | None) -> Iterator[None]:
    """Log and queue jobs under this request id for a while (one report of a batch routed
    by a job queued under another's)."""
    token = request_id.set(request)
    try:
        yield
    finally:
        request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, job_id, ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "job_id": _job_id(record),
        }
        for name in _IDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _job_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "job_id", None)
    if value in (None, "-"):
        return job_id.get()
    return str(value)


def configure(level: int = logging.INFO, stream: Any = None) -> None:
    """Send the root logger's records to `stream` (stderr) as JSON lines, once."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
