"""`safegrid grid …`: grid cells (网格), stations and jurisdictions as GeoJSON (RFC 7946).

The file format is described in grid/geojson.py; deploy/sample-grid.geojson is
the sample county exported with `grid export` (4 stations, 48 cells). Try it
on an empty database:

    safegrid grid import deploy/sample-grid.geojson --dry-run     # check and count only
    safegrid grid import deploy/sample-grid.geojson --effective-from 2026-07-01
    safegrid grid check                                           # validity, overlaps, gaps
    safegrid grid stats
    safegrid grid export var/grid.geojson

Exit status: 0 done; 1 problems found (nothing written by `import`);
2 bad usage (click's own). Every problem is listed with its cell code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from gateway import gridcache, runtime
from gateway.cli.common import configure
from grid.documents import Station
from grid.geojson import (
    Problem,
    check_topology,
    load_feature_collection,
    parse_feature_collection,
    to_feature_collection,
)
from grid.importer import grid_stats, import_grid, load_cells, load_stations

_WHEN_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")


@click.group("grid")
def grid() -> None:
    """Grid cells, stations and jurisdictions: GeoJSON import/export, checks, figures."""


def _setup() -> str:
    """Configure the process as every `safegrid` command does; the display time zone."""
    configure()  # a missing setting or a store that is down: one clear sentence
    return runtime.settings().timezone


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A database that is down or refuses a write is a clear message, not a traceback."""
    try:
        yield
    except PyMongoError as exc:
        raise click.ClickException(f"database error: {exc}") from exc


def parse_when(text: str, timezone: str) -> dt.datetime:
    """`YYYY-MM-DD` (midnight) or `YYYY-MM-DD HH:MM`, local time in `timezone`, as naive UTC.

    A jurisdiction change "from 1 July" means from midnight where the
    stations are, not midnight UTC.
    """
    for fmt in _WHEN_FORMATS:
        try:
            local = dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        aware = local.replace(tzinfo=ZoneInfo(timezone))
        return aware.astimezone(dt.UTC).replace(tzinfo=None)
    raise click.BadParameter(f"{text!r}: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'",
                             param_hint="--effective-from")


def _print_problems(problems: Sequence[Problem], show: int) -> None:
    """Problems sorted by code, at most `show` (0: all), then a count by kind."""
    if not problems:
        return
    ordered = sorted(problems, key=lambda p: (p.code or "", p.kind, p.message))
    listed = ordered if show == 0 else ordered[:show]
    for p in listed:
        click.echo(str(p), err=True)
    if len(listed) < len(ordered):
        click.echo(f"... and {len(ordered) - len(listed)} more (--show 0 lists all)", err=True)
    errors = sum(1 for p in problems if p.blocking)
    kinds = Counter(p.kind for p in problems)
    by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    click.echo(f"{errors} error(s), {len(problems) - errors} warning(s): {by_kind}", err=True)


@grid.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--effective-from", "effective_from", metavar="YYYY-MM-DD",
              help="Also record the cells' stations as a jurisdiction generation in force "
                   "from this local date (display time zone); a future date leaves "
                   "existing cells' stations as they are until then.")
@click.option("--dry-run", is_flag=True, help="Check and count; write nothing.")
@click.option("--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Records per database round trip.")
@click.option("--show", type=click.IntRange(0), default=100, show_default=True,
              help="How many problems to list (0: all).")
def import_(file: Path, effective_from: str | None, dry_run: bool, batch: int,
            show: int) -> None:
    """Import cells and stations from a GeoJSON FILE (upserts by code)."""
    timezone = _setup()
    effective = parse_when(effective_from, timezone) if effective_from else None
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from exc
    with _store_errors():
        known = {str(c) for c in Station._get_collection().distinct("code")}
        parsed = load_feature_collection(data, known_stations=known)
        click.echo(f"{file}: {len(parsed.cells)} cells, {len(parsed.stations)} stations read")
        if parsed.blocking:
            _print_problems(parsed.problems, show)
            click.echo("nothing imported", err=True)
            sys.exit(1)
        if dry_run:
            result = import_grid(parsed, effective_from=effective, batch=batch, dry_run=True)
        else:
            total = len(parsed.stations) + len(parsed.cells) * (2 if effective else 1)
            with click.progressbar(length=max(total, 1), label="importing") as bar:
                shown = 0

                def progress(done: int, _total: int) -> None:
                    nonlocal shown
                    bar.update(done - shown)
                    shown = done

                result = import_grid(parsed, effective_from=effective, batch=batch,
                                     progress=progress)
    _print_problems(result.problems, show)
    if result.blocking:
        click.echo("nothing imported", err=True)
        sys.exit(1)
    verb = "would be" if dry_run else "were"
    for what, counts in (("stations", result.stations), ("cells", result.cells)):
        click.echo(f"{what}: {counts.created} {verb} created, {counts.updated} updated, "
                   f"{counts.unchanged} unchanged")
    if result.generation is not None:
        click.echo(f"jurisdiction generation {result.generation} in force from "
                   f"{effective_from} ({timezone})")
    elif effective is not None and dry_run:
        click.echo(f"a jurisdiction generation would be recorded, in force from "
                   f"{effective_from} ({timezone})")
    if result.deferred:
        click.echo(f"{result.deferred} cell(s) change station on {effective_from}; until "
                   "then they keep their current one")
    if result.imported:
        try:
            gridcache.bump_version()
        except RedisError as exc:
            # Written, but no process knows: they would keep the old snapshot.
            raise click.ClickException(
                f"imported, but the change could not be announced (Redis: {exc}); "
                "run the same import again once Redis is back") from exc
        click.echo("grid version bumped: every process reloads its snapshot")


@grid.command("check")
@click.option("--show", type=click.IntRange(0), default=100, show_default=True,
              help="How many problems to list (0: all).")
@click.option("--warnings-ok", is_flag=True,
              help="Exit 0 when only warnings (gaps, codes shorter than 15 digits) are found.")
def check(show: int, warnings_ok: bool) -> None:
    """Check the stored grid: codes, polygons, station references, overlaps, gaps."""
    _setup()
    with _store_errors():
        cells = load_cells()
        stations = load_stations()
    # The stored grid, read as if it were a file: the same checks as an import.
    parsed = parse_feature_collection(to_feature_collection(cells, stations))
    problems = list(parsed.problems)
    # Invalid polygons were reported by the read already.
    problems += [p for p in check_topology(cells) if p.kind != "invalid_polygon"]
    if not problems:
        click.echo(f"grid OK: {len(cells)} cells, {len(stations)} stations")
        return
    _print_problems(problems, show)
    if warnings_ok and not any(p.blocking for p in problems):
        return
    sys.exit(1)


@grid.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Everything, as JSON.")
def stats(as_json: bool) -> None:
    """Counts by county and station, cells without a station, cell areas."""
    _setup()
    with _store_errors():
        figures = grid_stats()
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    _print_stats(figures)


def _print_stats(f: dict[str, Any]) -> None:
    click.echo(f"cells: {f['cells']} in {len(f['counties'])} counties, "
               f"{len(f['townships'])} townships, {f['villages']} villages")
    click.echo(f"stations: {f['stations']}")
    area = f["area_km2"]
    if area is not None:
        click.echo(f"cell area (km²): min {area['min']:.3f}, median {area['median']:.3f}, "
                   f"max {area['max']:.3f}")
    click.echo(f"cells without a station: {f['cells_without_station']}; "
               f"with an unknown station: {f['cells_with_unknown_station']}")
    idle = f["stations_without_cells"]
    click.echo(f"stations without cells: {', '.join(idle) if idle else 'none'}")
    latest = f["latest_generation"]
    click.echo(f"jurisdiction generations: {f['generations']}"
               + (f" (latest {latest['number']}, in force from {latest['effective_from']} UTC)"
                  if latest else ""))
    click.echo("cells by county:")
    for code, n in f["counties"].items():
        click.echo(f"  {code}  {n}")
    click.echo("cells by station:")
    for code, n in f["cells_per_station"].items():
        click.echo(f"  {code}  {n}")


@grid.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def export(file: Path) -> None:
    """Write every stored station and cell to FILE as GeoJSON ('-': standard output)."""
    _setup()
    with _store_errors():
        cells = load_cells()
        stations = load_stations()
    text = dumps_feature_collection(to_feature_collection(cells, stations))
    if str(file) == "-":
        click.echo(text, nl=False)
        return
    try:
        _write_atomically(file, text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc.strerror}") from exc
    click.echo(f"{file}: {len(stations)} stations, {len(cells)} cells")


def dumps_feature_collection(collection: dict[str, Any]) -> str:
    """GeoJSON text with one feature per line: valid JSON that diffs well."""
    features = collection["features"]
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    body = ",\n".join(lines)
    return '{"type":"FeatureCollection","features":[\n' + body + "\n]}\n"


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the grid is not secret
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
