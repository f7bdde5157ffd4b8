"""The Prometheus collector: every number read at scrape time from Redis and MongoDB.

Nothing is kept in a process's memory, so every gunicorn process answers the same,
whichever process or RQ worker did the work (docs/metrics.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.utils import utcparse

from gateway import telemetry
from gateway.delivery import queues
from gateway.extensions import redis_store
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES

# counter → (help, its labels in order)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "reports": ("Reports filed (new reports, not retries), by channel and category",
                ("channel", "category")),
    "escalations": ("Escalation steps taken on unacknowledged dispatches", ("level",)),
    "sms_sent": ("SMS handed to the SMS gateway, by purpose", ("purpose",)),
    "sms_delivered": ("SMS the carrier reported delivered", ()),
    "sms_failed": ("SMS that failed for good: send errors and failed delivery reports",
                   ("reason",)),
    "geocoder_cache": ("Online geocoder cache lookups, by result", ("result",)),
    "alert_recipients": ("Alert messages fanned out to grid workers", ()),
    "sweeper_found": ("Work the outbox sweeper had to queue again, by kind", ("kind",)),
}
HISTOGRAMS = {
    "intake_seconds": "App and SMS intake: request start to report stored and queued",
    "route_seconds": "Report stored to routed (one Dispatch per station created)",
}
assert set(COUNTERS) == telemetry.COUNTER_NAMES


class SafeGridCollector(Collector):
    def collect(self) -> Iterator[Any]:
        conn = redis_store.conn
        yield from _counters(conn)
        yield from _histograms(conn)
        yield from _queues(conn)
        overdue = GaugeMetricFamily(
            "safegrid_dispatches_overdue",
            "Dispatches past their acknowledgement deadline and not acknowledged")
        overdue.add_metric([], float(Dispatch.objects(
            status__in=sorted(OVERDUE_STATES), ack_deadline__lte=utcnow(),
            acknowledged_at=None).count()))
        yield overdue
        marks = telemetry.read_marks(conn)
        anchor = GaugeMetricFamily(
            "safegrid_audit_anchor_last_timestamp_seconds",
            "When the audit log's head was last anchored outside the database (unix time)")
        if "audit_anchor" in marks:
            anchor.add_metric([], marks["audit_anchor"])
        yield anchor


def _counters(conn: Any) -> Iterator[Any]:
    families = {name: CounterMetricFamily(f"safegrid_{name}", help_, labels=list(labels))
                for name, (help_, labels) in COUNTERS.items()}
    for name, labels, value in telemetry.read_counters(conn):
        wanted = COUNTERS[name][1]
        families[name].add_metric([labels.get(k, "other") for k in wanted], value)
    yield from families.values()


def _histograms(conn: Any) -> Iterator[Any]:
    for name, help_ in HISTOGRAMS.items():
        buckets, total, _ = telemetry.read_histogram(conn, name)
        family = HistogramMetricFamily(f"safegrid_{name}", help_)
        family.add_metric([], [("+Inf" if b == float("inf") else repr(b), n) for b, n in buckets],
                          total)
        yield family


def _queues(conn: Any) -> Iterator[Any]:
    depth = GaugeMetricFamily("safegrid_rq_queue_depth", "Jobs waiting in an RQ queue",
                              labels=["queue"])
    oldest = GaugeMetricFamily("safegrid_rq_oldest_job_age_seconds",
                               "Age of the job waiting longest in an RQ queue (0 when empty)",
                               labels=["queue"])
    failed = GaugeMetricFamily("safegrid_rq_failed_jobs",
                               "Jobs in an RQ queue's failed registry (kept 7 days)",
                               labels=["queue"])
    now = time.time()
    for name in queues.WORKER_QUEUES:
        queue = queues.queue(name)
        with conn.pipeline(transaction=False) as pipe:
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
            pipe.zcard(FailedJobRegistry(name, connection=conn).key)
            length, head, failures = pipe.execute()
        age = 0.0
        if head is not None:
            job_id = head.decode() if isinstance(head, bytes) else str(head)
            enqueued = conn.hget(Job.key_for(job_id), "enqueued_at")
            if enqueued:
                age = max(0.0, now - _timestamp(enqueued))
        depth.add_metric([name], float(length))
        oldest.add_metric([name], age)
        failed.add_metric([name], float(failures))
    yield from (depth, oldest, failed)


def _timestamp(raw: bytes | str) -> float:
    """RQ's enqueued_at (ISO, UTC) as unix time."""
    parsed = utcparse(raw.decode() if isinstance(raw, bytes) else raw)
    return parsed.replace(tzinfo=dt.UTC).timestamp()


def registry() -> CollectorRegistry:
    """A registry holding only SafeGrid's collector (no per-process default metrics)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(SafeGridCollector())
    return found
