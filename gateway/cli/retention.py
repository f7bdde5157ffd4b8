"""`safegrid retention`: anonymising unfounded reports, legal holds."""

from __future__ import annotations

import click

from gateway import runtime
from gateway.cli.common import configure, who_ran
from gateway.custody import retention
from gateway.custody.legal_hold import set_hold


@click.group("retention")
def retention_group() -> None:
    """Data lifecycle: anonymising unfounded reports, legal holds."""



@retention_group.command("run")
def retention_run() -> None:
    """Anonymise reports closed as unfounded longer ago than SAFEGRID_RETENTION_DAYS."""
    configure()
    anonymised, held = retention.run(runtime.settings().retention_days)
    click.echo(f"anonymised {anonymised} reports; {held} kept under legal hold")



@retention_group.command("hold")
@click.argument("report_code")
@click.option("--release", is_flag=True, help="Lift the hold instead of setting it.")
@click.option("--reason", required=True, help="Why (audited).")
def retention_hold(report_code: str, release: bool, reason: str) -> None:
    """Put a report under legal hold (or release it): it is then never anonymised."""
    configure()
    if not set_hold(report_code, not release, actor=who_ran(), reason=reason):
        raise click.ClickException(f"no report {report_code.upper()}")
    click.echo(f"{report_code.upper()}: legal hold {'released' if release else 'set'}")

