"""RQ queue names, declared once, and the queues themselves."""

from __future__ import annotations

from rq import Queue

from gateway.extensions import redis_store

CRITICAL = "critical"
URGENT = "urgent"
ROUTINE = "routine"
SMS = "sms"
ALERTS = "alerts"
MAINTENANCE = "maintenance"

# The order a worker listens in: a child-abduction clue never waits behind routine work.
WORKER_QUEUES = (CRITICAL, URGENT, ROUTINE, SMS, ALERTS, MAINTENANCE)
BY_PRIORITY = {"critical": CRITICAL, "urgent": URGENT, "routine": ROUTINE}


def queue(name: str) -> Queue:
    """The named queue on this process's Redis connection."""
    if name not in WORKER_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_store.conn)
