"""RQ worker and cron processes for SafeGrid."""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.executions import Execution
from rq.job import Job

from gateway import jsonlog, runtime
from gateway.alerts.fanout import sweep_alerts
from gateway.custody.retention import run_retention
from gateway.delivery import queues
from gateway.delivery.outbound_sms import sweep_outbound
from gateway.delivery.routing import sweep
from gateway.extensions import redis_store
from gateway.intake.inbound_sms import sweep_inbound
from gateway.privacy.audit_anchor import run_anchor
from gateway.settings import Settings

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 60
RETRY_S = 2


def worker_queues(queue_names: tuple[str, ...] = (), lane: str | None = None) -> tuple[str, ...]:
    """The queues a worker listens to: a lane's, the names given, or all of them."""
    if lane is not None and queue_names:
        raise ValueError("name a lane or queues, not both")
    if lane is not None:
        return queues.lane_queues(lane)
    unknown = [n for n in queue_names if n not in queues.WORKER_QUEUES]
    if unknown:  # fail before the worker starts, not at its first job
        raise ValueError(f"unknown queue {unknown[0]!r} (one of {', '.join(queues.WORKER_QUEUES)})")
    return queue_names or queues.WORKER_QUEUES


class TracedWorker(SimpleWorker):
    """SimpleWorker that logs each job's id and the request id it was queued under.

    Both are context variables while the job runs (gateway/jsonlog.py), so every log
    line of the job carries them, and jobs it queues carry the request id on."""

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        current = jsonlog.job_id.set(job.id)
        try:
            with jsonlog.under((job.meta or {}).get("request_id")):
                return bool(super().perform_job(job, queue, execution))
        finally:
            jsonlog.job_id.reset(current)


def run_worker(queue_names: tuple[str, ...] = (), *, lane: str | None = None,
               burst: bool = False) -> bool:
    """Work the queues in order (a lane's, or the names given); with RQ's scheduler.

    Every worker runs the scheduler: each queue's scheduled jobs (retries, SLA
    checks) are moved by whichever worker listening to it holds that queue's lock,
    so each lane needs at least one worker (`make run` and deploy/systemd start both).

    SimpleWorker runs jobs in this process: no fork per job (RQ's fork costs
    ~10 ms a job here) and one MongoDB client per process, which pymongo
    needs (its clients are not fork-safe). A worker killed mid-job leaves the
    report `received`; the sweeper re-queues it and the job is idempotent.
    """
    names = worker_queues(queue_names, lane)
    while True:
        # A short maintenance interval: when the worker holding RQ's scheduler lock
        # dies, another takes the scheduler over within a minute, not ten.
        try:
            worker = TracedWorker([queues.queue(n) for n in names],
                                  connection=redis_store.conn,
                                  maintenance_interval=MAINTENANCE_INTERVAL_S)
            return bool(worker.work(burst=burst, with_scheduler=True))
        except RedisConnectionError as exc:
            if burst:
                raise
            # Redis restarting: wait for it rather than exit (jobs are idempotent and
            # the sweeper re-queues whatever the outage dropped).
            log.warning("worker lost Redis (%s); retrying in %d s", exc, RETRY_S)
            time.sleep(RETRY_S)


def build_cron(settings: Settings, connection: Redis) -> CronScheduler:
    """RQ's cron scheduler with SafeGrid's periodic jobs registered (not started)."""
    scheduler = CronScheduler(connection=connection)
    scheduler.register(sweep, queues.MAINTENANCE,
                       interval=settings.sweep_interval_s, job_timeout=300)
    # Inbound SMS whose job died are re-queued as reports are (nothing lost).
    scheduler.register(sweep_inbound, queues.MAINTENANCE,
                       interval=settings.sweep_interval_s, job_timeout=300)
    # Replies and notices whose send job died are re-queued too.
    scheduler.register(sweep_outbound, queues.MAINTENANCE,
                       interval=settings.sweep_interval_s, job_timeout=300)
    # Alert rings that are due and not sent, alert batches whose job was lost.
    scheduler.register(sweep_alerts, queues.MAINTENANCE,
                       interval=settings.sweep_interval_s, job_timeout=300)
    scheduler.register(run_retention, queues.MAINTENANCE, interval=6 * 3600,
                       job_timeout=3600)
    if settings.audit_anchor_file:
        scheduler.register(run_anchor, queues.MAINTENANCE,
                           interval=settings.audit_anchor_interval_s, job_timeout=300)
    else:
        log.warning("audit anchoring is off: set SAFEGRID_AUDIT_ANCHOR_FILE "
                    "(docs/security.md, A7)")
    return scheduler


def run_cron() -> None:
    """Register the periodic jobs and run RQ's cron scheduler until stopped."""
    while True:
        scheduler = build_cron(runtime.settings(), redis_store.conn)
        try:
            scheduler.start()
            return
        except RedisConnectionError as exc:
            log.warning("cron lost Redis (%s); retrying in %d s", exc, RETRY_S)
            time.sleep(RETRY_S)
