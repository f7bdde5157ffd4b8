"""`safegrid init-db` and `safegrid sample-data`: a database's indexes and the sample county."""

from __future__ import annotations

from pathlib import Path

import click

from gateway import gridcache, sample
from gateway.cli.common import configure


@click.command("init-db")
def init_db() -> None:
    """Create every collection's indexes."""
    configure()
    click.echo("indexes ready")



@click.command("sample-data")
@click.option("--if-empty", is_flag=True, help="Do nothing when the sample county is there.")
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the tokens to this file (mode 600).")
def sample_data(if_empty: bool, tokens_file: Path | None) -> None:
    """Build the sample county and print tokens to try the API with."""
    configure()
    if sample.is_loaded():
        if if_empty:
            click.echo("sample county already loaded")
            return
        raise click.ClickException("the sample county is already loaded; use an empty database")
    county = sample.build()
    gridcache.bump_version()
    lines = [f"{who}: {token}" for who, token in county.tokens.items()]
    lines.append(f"password of every sample account (app login by phone): {county.password}")
    click.echo(f"sample county {county.county_name}: {county.cells} grid cells, "
               f"{len(county.stations)} stations")
    click.echo("\n".join(lines))
    if tokens_file is not None:
        tokens_file.parent.mkdir(parents=True, exist_ok=True)
        tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tokens_file.chmod(0o600)

