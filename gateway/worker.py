"""RQ worker and cron processes for SafeGrid."""

from __future__ import annotations

from rq import SimpleWorker
from rq.cron import CronScheduler

from gateway import queues, runtime
from gateway.extensions import redis_store


def run_worker(queue_names: tuple[str, ...] = (), *, burst: bool = False) -> bool:
    """Work the queues in priority order; with the scheduler for `enqueue_in` jobs.

    SimpleWorker runs jobs in this process: no fork per job (RQ's fork costs
    ~10 ms a job here) and one MongoDB client per process, which pymongo
    needs (its clients are not fork-safe). A worker killed mid-job leaves the
    report `received`; the sweeper re-queues it and the job is idempotent.
    """
    names = queue_names or queues.WORKER_QUEUES
    worker = SimpleWorker([queues.queue(n) for n in names], connection=redis_store.conn)
    return bool(worker.work(burst=burst, with_scheduler=True))


def run_cron() -> None:
    """Register the periodic jobs and run RQ's cron scheduler until stopped."""
    from gateway.jobs import run_retention, sweep

    scheduler = CronScheduler(connection=redis_store.conn)
    scheduler.register(sweep, queues.MAINTENANCE, interval=runtime.settings().sweep_interval_s,
                       job_timeout=300)
    scheduler.register(run_retention, queues.MAINTENANCE, interval=6 * 3600, job_timeout=3600)
    scheduler.start()
