"""Event counters and latency histograms kept in Redis, for /metrics (docs/metrics.md).

Every gunicorn process and RQ worker adds to the same Redis hashes (HINCRBY,
HINCRBYFLOAT), so the numbers add up across processes with no multiprocess files,
and survive a process restart (Redis keeps them with AOF). The intake path adds its
commands to the pipeline it already sends (`count_in`, `observe_in`): no extra round
trip. Elsewhere `count`/`observe` send one pipelined call and never fail the caller.

Names and label values are fixed vocabularies (channel, category, queue, reason
class): never a phone, a code, an id or free text.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError

from gateway.extensions import redis_store

log = logging.getLogger(__name__)

COUNTERS = "safegrid:metrics:counters"
HISTOGRAM = "safegrid:metrics:hist:{name}"

# Seconds. Intake is milliseconds; routing up to seconds (target p99 ≤ 1 s).
BUCKETS: dict[str, tuple[float, ...]] = {
    "intake_seconds": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    "route_seconds": (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
}

# What a counter may be called; /metrics turns each into safegrid_<name>_total.
COUNTER_NAMES = frozenset({
    "reports",  # channel, category
    "escalations",  # level
    "sms_sent",  # purpose
    "sms_delivered",
    "sms_failed",  # reason
    "geocoder_cache",  # result: hit | miss
    "alert_recipients",  # fan-out: SMS queued for grid workers by an alert
    "sweeper_found",  # kind: what the outbox sweeper had to queue again
})
# When this thread's (greenlet's) request began (time.perf_counter), set by the app.
request_started: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "safegrid_request_started", default=None)
_LABEL_VALUE = re.compile(r"[a-z0-9_]{1,40}")


def label_value(value: object) -> str:
    """A label value from a fixed vocabulary; anything else becomes `other`."""
    text = str(value).strip().lower().replace("-", "_").replace(":", "_")
    return text if _LABEL_VALUE.fullmatch(text) else "other"


def series(name: str, labels: Mapping[str, object]) -> str:
    """The hash field of one counter series: `reports|category=abduction|channel=app`."""
    if name not in COUNTER_NAMES:
        raise ValueError(f"unknown counter {name!r}")
    return "|".join([name, *(f"{k}={label_value(v)}" for k, v in sorted(labels.items()))])


def parse_series(field: str) -> tuple[str, dict[str, str]]:
    name, *pairs = field.split("|")
    return name, dict(pair.split("=", 1) for pair in pairs)


def count_in(pipe: Pipeline, name: str, amount: int = 1, **labels: object) -> None:
    """Add to a counter inside a pipeline the caller sends anyway."""
    pipe.hincrby(COUNTERS, series(name, labels), amount)


def bucket_of(name: str, seconds: float) -> str:
    for bound in BUCKETS[name]:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def observe_in(pipe: Pipeline, name: str, seconds: float) -> None:
    """Record one latency inside a pipeline: its bucket, the sum and the count."""
    key = HISTOGRAM.format(name=name)
    pipe.hincrby(key, bucket_of(name, seconds), 1)
    pipe.hincrbyfloat(key, "sum", max(0.0, seconds))
    pipe.hincrby(key, "count", 1)


def observe_request_in(pipe: Pipeline, name: str) -> None:
    """Record the time since this request began, if a request is being served."""
    started = request_started.get()
    if started is not None:
        observe_in(pipe, name, time.perf_counter() - started)


def count(name: str, amount: int = 1, **labels: object) -> None:
    """Add to a counter now (one round trip); a Redis outage loses the tick, not the job."""
    _send(lambda pipe: count_in(pipe, name, amount, **labels))


def observe(name: str, seconds: float) -> None:
    """Record one latency now (one round trip); never fails the caller."""
    _send(lambda pipe: observe_in(pipe, name, seconds))


MARKS = "safegrid:metrics:last"
MARK_NAMES = frozenset({"audit_anchor"})


def mark(name: str) -> None:
    """Record that `name` last happened now (unix time), for an alert on its age."""
    if name not in MARK_NAMES:
        raise ValueError(f"unknown mark {name!r}")
    _send(lambda pipe: pipe.hset(MARKS, name, repr(time.time())))


def read_marks(conn: Any) -> dict[str, float]:
    return {(k.decode() if isinstance(k, bytes) else k): float(v)
            for k, v in conn.hgetall(MARKS).items()}


def _send(add: Any) -> None:
    try:
        with redis_store.conn.pipeline(transaction=False) as pipe:
            add(pipe)
            pipe.execute()
    except RedisError:
        log.warning("metrics: Redis unavailable, an event was not counted")


def read_counters(conn: Any) -> list[tuple[str, dict[str, str], int]]:
    """Every counter series: (name, labels, value)."""
    raw = conn.hgetall(COUNTERS)
    found = []
    for field, value in raw.items():
        name, labels = parse_series(field.decode() if isinstance(field, bytes) else field)
        if name in COUNTER_NAMES:
            found.append((name, labels, int(value)))
    return sorted(found, key=lambda s: (s[0], sorted(s[1].items())))


def read_histogram(conn: Any, name: str) -> tuple[list[tuple[float, int]], float, int]:
    """Cumulative (upper bound, count) pairs, the sum and the count of a histogram."""
    raw = {(k.decode() if isinstance(k, bytes) else k): v
           for k, v in conn.hgetall(HISTOGRAM.format(name=name)).items()}
    running = 0
    buckets = []
    for bound in BUCKETS[name]:
        running += int(raw.get(repr(bound), 0))
        buckets.append((bound, running))
    running += int(raw.get("+Inf", 0))
    buckets.append((float("inf"), running))
    return buckets, float(raw.get("sum", 0.0)), int(raw.get("count", 0))
