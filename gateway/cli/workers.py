"""`safegrid worker`, `cron` and `sweep`: the RQ worker, the periodic jobs, the outbox sweeper."""

from __future__ import annotations

import sys

import click

from gateway.cli.common import configure
from gateway.delivery.outbound_sms import sweep_outbound
from gateway.delivery.queues import LANES
from gateway.delivery.routing import sweep as sweep_job
from gateway.intake.inbound_sms import sweep_inbound
from gateway.worker import run_cron, run_worker, worker_queues


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--lane", type=click.Choice(sorted(LANES)), default=None,
              help="fast: inbound SMS, critical, alerts, sweeper, sending; "
                   "route: critical, urgent, routine.")
@click.argument("queue_names", nargs=-1)
def worker(burst: bool, lane: str | None, queue_names: tuple[str, ...]) -> None:
    """Run an RQ worker on a lane, or on the given queues (all, by priority, when none)."""
    if lane and queue_names:
        raise click.UsageError("name a lane or queues, not both")
    try:
        worker_queues(queue_names, lane)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    configure()
    sys.exit(0 if run_worker(queue_names, lane=lane, burst=burst) else 1)



@click.command("cron")
def cron() -> None:
    """Run the periodic jobs (the outbox sweeper) through RQ's cron scheduler."""
    configure()
    run_cron()



@click.command("sweep")
@click.option("--older-than", type=int, default=None, help="Seconds (default from settings).")
def sweep(older_than: int | None) -> None:
    """Re-queue reports stored but not yet routed, and SMS not yet handled or sent, once."""
    configure()
    click.echo(f"re-queued {sweep_job(older_than)} reports")
    click.echo(f"re-queued {sweep_inbound(older_than)} inbound SMS")
    click.echo(f"re-queued {sweep_outbound(older_than)} outbound SMS")

