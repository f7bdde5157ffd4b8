"""`safegrid`, the command line: one group, with a module of gateway/cli/ per command group."""

from __future__ import annotations

import logging

import click

from gateway import jsonlog
from gateway.cli import accounts, audit, keys, people, retention, store, workers
from gateway.cli.grid import grid
from gateway.cli.open311 import open311_group

# Long-running processes log JSON lines (docs/metrics.md); commands people run, plain text.
JSON_LOGGED = frozenset({"worker", "cron"})


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """SafeGrid administration."""
    if ctx.invoked_subcommand in JSON_LOGGED:
        jsonlog.configure(logging.INFO)
    else:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for command in (
    store.init_db, store.sample_data, store.store_group,
    accounts.token, accounts.set_password, accounts.revoke_tokens, accounts.sms_pin_cmd,
    accounts.mfa_group,
    workers.worker, workers.cron, workers.sweep,
    keys.keys, keys.reencrypt_cmd,
    audit.audit_group,
    retention.retention_group,
    grid,
    people.people_group, people.units_group,
    open311_group,
):
    main.add_command(command)
