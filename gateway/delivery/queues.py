"""RQ queue names, declared once, the worker lanes that listen to them, and the queues."""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from gateway import jsonlog
from gateway.extensions import redis_store

CRITICAL = "critical"
URGENT = "urgent"
ROUTINE = "routine"
INBOUND = "inbound"  # handling an SMS that arrived (parse, file, receipt)
SMS = "sms"  # sending SMS, at the carrier's rate
ALERTS = "alerts"
MAINTENANCE = "maintenance"

BY_PRIORITY = {"critical": CRITICAL, "urgent": URGENT, "routine": ROUTINE}

# RQ takes the first non-empty queue in a worker's list, so a queue waits behind
# every queue listed before it. One list cannot keep both a routine backlog and
# an SMS moving, hence lanes, each its own worker processes:
# - `fast`: a texted report (a reporter waiting for the receipt), critical clues,
#   alert fan-out and the sweeper never wait behind routine routing. Inbound SMS
#   come first: public tips are rate limited per number, so this queue stays short,
#   and critical clues are also first on every routing worker. Sending comes last:
#   it sleeps to keep to the carrier's rate.
# - `route`: routing by priority, critical first; more of these raise throughput.
LANES: dict[str, tuple[str, ...]] = {
    "fast": (INBOUND, CRITICAL, ALERTS, MAINTENANCE, SMS),
    "route": (CRITICAL, URGENT, ROUTINE),
}
# One worker on every queue (`safegrid worker` with no names; a small install):
# whatever is short and urgent first, routine routing and sending last.
WORKER_QUEUES = (CRITICAL, INBOUND, ALERTS, MAINTENANCE, URGENT, ROUTINE, SMS)


class TracedQueue(Queue):
    """A queue whose jobs carry the request id they were queued under (job meta), so the
    worker logs it with the job's own id (gateway/jsonlog.py, gateway/worker.py)."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        request_id = jsonlog.request_id.get()
        if request_id is not None:
            kwargs["meta"] = {**(kwargs.get("meta") or {}), "request_id": request_id}
        return super().create_job(*args, **kwargs)


def queue(name: str) -> Queue:
    """The named queue on this process's Redis connection."""
    if name not in WORKER_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return TracedQueue(name, connection=redis_store.conn)


def lane_queues(lane: str) -> tuple[str, ...]:
    """The queues a lane's workers listen to, in order."""
    try:
        return LANES[lane]
    except KeyError:
        raise ValueError(f"unknown lane {lane!r} (one of {', '.join(LANES)})") from None


def pending_job_ids(names: tuple[str, ...]) -> set[str]:
    """Ids of jobs waiting in these queues, or scheduled on them (a retry, a delay).

    For the sweepers: re-queueing a job that is still queued puts its id in the
    list twice (RQ keeps one hash per id but runs every list entry), which grew a
    routing backlog by itself at every sweep. Running jobs are not counted: a
    killed worker's job stays in RQ's started registry until its heartbeat expires
    (90 s or more), and must be re-queued sooner; a copy of a job that is still
    running finds the work done or claimed (jobs are idempotent).
    """
    conn = redis_store.conn
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.lrange(Queue(name, connection=conn).key, 0, -1)
            pipe.zrange(ScheduledJobRegistry(name, connection=conn).key, 0, -1)
        found = pipe.execute()
    return {raw.decode() if isinstance(raw, bytes) else str(raw)
            for batch in found for raw in batch}
