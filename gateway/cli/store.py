"""`safegrid init-db`, `sample-data` and `store`: indexes, the sample county, backup and restore."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import click
from mongoengine.connection import get_db

from gateway import gridcache, sample
from gateway.cli.common import configure
from gateway.custody import backup
from gateway.custody.sealed_data import SEALED


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



@click.group("store")
def store_group() -> None:
    """Back up and restore the database (docs/operations.md)."""


@store_group.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def store_backup(directory: Path) -> None:
    """Write every collection, with a manifest of counts, hashes and indexes, to DIRECTORY."""
    configure()
    try:
        manifest = backup.backup(get_db(), directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    total = sum(c["count"] for c in manifest["collections"].values())
    click.echo(f"backed up {len(manifest['collections'])} collections, {total} documents to "
               f"{directory}; it needs the data keys {', '.join(manifest['data_key_ids']) or '-'}")


def _restore_into(directory: Path, database: str | None, sample: int) -> backup.Verification:
    db = get_db() if database is None else get_db().client[database]
    try:
        manifest = backup.restore(db, directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    result = backup.verify(db, manifest, SEALED, sample=sample)
    click.echo(f"restored into {db.name}: {result.collections} collections, {result.documents} "
               f"documents, {result.indexes} indexes; {result.unsealed} sealed values opened")
    for problem in result.problems:
        click.echo(f"PROBLEM {problem}", err=True)
    return result


@store_group.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--database", help="Restore into this database of the same server "
              "(default: the one MONGODB_URI names); it must hold no documents.")
@click.option("--sample", default=1000, show_default=True,
              help="Sealed documents per collection opened to prove the keys work.")
def store_restore(directory: Path, database: str | None, sample: int) -> None:
    """Restore a backup from DIRECTORY into an empty database, then verify it."""
    configure()
    if not _restore_into(directory, database, sample).ok:
        sys.exit(1)


@store_group.command("drill")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Keep the drill database for inspection.")
@click.option("--sample", default=1000, show_default=True,
              help="Sealed documents per collection opened to prove the keys work.")
def store_drill(directory: Path, keep: bool, sample: int) -> None:
    """Back up to DIRECTORY, restore into a new database beside this one, verify, drop it.

    Exit status 0 only if every count, index and sampled sealed value came back.
    """
    configure()
    db = get_db()
    try:
        backup.backup(db, directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    drill = f"{db.name}_drill_{stamp}"[:63]
    try:
        result = _restore_into(directory, drill, sample)
    finally:
        if not keep:
            db.client.drop_database(drill)
    click.echo("restore drill passed" if result.ok else "restore drill FAILED")
    if not result.ok:
        sys.exit(1)
