"""`safegrid open311 key issue|revoke|list`: API keys of Open311 clients (audited)."""

from __future__ import annotations

import click

from gateway.cli.common import configure, who_ran
from gateway.errors import Refusal
from gateway.intake import open311


@click.group("open311")
def open311_group() -> None:
    """Open311 GeoReport v2 clients (docs/interop.md)."""


@open311_group.group("key")
def key_group() -> None:
    """Per-client API keys: shown once, stored hashed, revocable."""


@key_group.command("issue")
@click.option("--label", required=True, help="Who holds the key (the client's name).")
@click.option("--county", default=None, help="Limit the key to one county (adcode).")
def key_issue(label: str, county: str | None) -> None:
    """Issue a key and print it once."""
    configure()
    try:
        api_key, key = open311.issue_key(label, county, who_ran())
    except Refusal as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"id: {key.id}")
    click.echo(f"api_key: {api_key}")
    click.echo("Shown once: only its hash is stored.")


@key_group.command("revoke")
@click.argument("key_id")
def key_revoke(key_id: str) -> None:
    """Revoke a key at once: its next request is refused (403)."""
    configure()
    if not open311.revoke_key(key_id, who_ran()):
        raise click.ClickException(f"no active Open311 key {key_id}")
    click.echo(f"revoked {key_id}")


@key_group.command("list")
def key_list() -> None:
    """Every key: id, county, state, label (never the key itself)."""
    configure()
    for key in open311.all_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        click.echo(f"{key.id}  {key.county_code or 'all':6}  {state:18}  {key.label}")
