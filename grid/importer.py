"""Put a read grid file into the store, and the grid's figures.

The import is all-or-nothing in its checks and batch-wise in its writes:
every check (the file's own problems, station references against the store,
overlaps with the cells already stored in the same counties) runs before the
first write, and a blocking problem writes nothing. Writes are upserts by
code, `batch` documents per `bulk_write` (one round trip a batch), stations
before cells so no cell ever points at a station not yet stored. Re-running
the same import changes nothing and reports every record as unchanged.

Jurisdictions: with `effective_from`, the file's cell → station assignments
are also recorded as a generation (grid/jurisdiction.py). When that date is
still in the future, existing cells keep their current station (new cells
take the file's, having no other) until `apply_due_generations` runs on or
after the date; the count of such waiting changes is `deferred`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne

from grid.documents import GridCell, Station, utcnow
from grid.geojson import (
    CellRecord,
    ParsedGrid,
    Problem,
    StationRecord,
    cell_areas_m2,
    check_topology,
)
from grid.jurisdiction import (
    Generation,
    assignments_of,
    due_generations,
    mark_applied,
    naive_utc,
    record_generation,
    stations_at,
)

_CELL_FIELDS = ("name", "ring", "village_code", "township_code", "county_code", "station_code")


@dataclass(frozen=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, refused or dry run, would have done) and why not."""

    imported: bool
    stations: Counts = field(default_factory=Counts)
    cells: Counts = field(default_factory=Counts)
    generation: int | None = None
    deferred: int = 0  # existing cells whose new station waits for effective_from
    dry_run: bool = False
    problems: tuple[Problem, ...] = ()

    @property
    def blocking(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.blocking)


def import_grid(
    parsed: ParsedGrid,
    *,
    effective_from: dt.datetime | None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 1000,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    note: str = "",
) -> ImportResult:
    """Upsert the file's stations, then its cells; refuse on any blocking problem.

    `progress(done, total)` is called after each batch (records written and,
    with `effective_from`, generation rows). A dry run checks and counts
    against the store but writes nothing.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    now = naive_utc(now) if now is not None else utcnow()
    effective = naive_utc(effective_from) if effective_from is not None else None
    # Station references are checked again below against the store, so the
    # file may have been read without knowing the stored stations.
    problems = [p for p in parsed.problems if p.kind != "unknown_station"]
    if any(p.blocking for p in problems):
        return ImportResult(imported=False, dry_run=dry_run, problems=tuple(problems))

    stored_stations = {str(d["code"]): d for d in Station._get_collection().find({}, {"_id": 0})}
    known = set(stored_stations) | {s.code for s in parsed.stations}
    for cell in parsed.cells:
        if cell.station_code not in known:
            problems.append(Problem(cell.code, "unknown_station",
                                    f"station_code {cell.station_code!r} is neither in the "
                                    "file nor stored"))
    counties = sorted({c.county_code for c in parsed.cells})
    stored_cells: dict[str, Mapping[str, Any]] = {}
    if counties:
        found = GridCell._get_collection().find({"county_code": {"$in": counties}}, {"_id": 0})
        stored_cells = {str(d["code"]): d for d in found}
    problems.extend(_topology_with_stored(parsed.cells, stored_cells))
    if any(p.blocking for p in problems):
        return ImportResult(imported=False, dry_run=dry_run, problems=tuple(problems))

    future = effective is not None and effective > now
    deferred = 0
    if future:
        deferred = sum(1 for c in parsed.cells
                       if c.code in stored_cells
                       and stored_cells[c.code].get("station_code") != c.station_code)
    if dry_run:
        return ImportResult(
            imported=False, dry_run=True, deferred=deferred, problems=tuple(problems),
            stations=_plan(((s.code, _station_fields(s)) for s in parsed.stations),
                           stored_stations),
            cells=_plan(((c.code, _cell_fields(c, keep_station=future)) for c in parsed.cells),
                        stored_cells),
        )

    total = len(parsed.stations) + len(parsed.cells) * (2 if effective is not None else 1)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    station_counts = _upsert(
        Station._get_collection(),
        [(s.code, _station_fields(s), {}) for s in parsed.stations], batch, advance)
    generation = None
    in_force: dict[str, str] = {}
    if effective is not None and parsed.cells:
        start = done
        generation = record_generation(
            {c.code: c.station_code for c in parsed.cells}, effective,
            note or f"import of {len(parsed.cells)} cells",
            progress=lambda n, _total: advance(start + n - done), batch=max(batch, 1000))
        if done < start + len(parsed.cells):  # already recorded (a re-run): nothing written
            advance(start + len(parsed.cells) - done)
        if not future and _later_generation_in_force(effective, now):
            # A back-dated file behind a generation already in force: the cells
            # get what is in force now, not the file's older assignment.
            in_force = stations_at(now)
    cell_ops = []
    for c in parsed.cells:
        fields = _cell_fields(c, keep_station=future)
        on_insert: dict[str, Any] = {}
        if future:
            on_insert = {"station_code": c.station_code}
        elif c.code in in_force:
            fields["station_code"] = in_force[c.code]
        cell_ops.append((c.code, fields, on_insert))
    cell_counts = _upsert(GridCell._get_collection(), cell_ops, batch, advance)
    if generation is not None and not future:
        mark_applied(generation, now)
    return ImportResult(imported=True, stations=station_counts, cells=cell_counts,
                        generation=generation, deferred=deferred, problems=tuple(problems))


def _topology_with_stored(cells: Iterable[CellRecord],
                          stored: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    """Overlaps and gaps of the file's cells among the stored cells of their counties.

    Only problems that involve a cell of the file are returned: the file is
    not refused for what was already wrong in the store (`grid check` says).
    """
    merged = {code: _record(doc) for code, doc in stored.items()}
    file_codes: set[str] = set()
    for cell in cells:
        merged[cell.code] = cell
        file_codes.add(cell.code)
    found = check_topology(list(merged.values()))
    return [p for p in found
            if p.code in file_codes or not file_codes.isdisjoint(p.related)]


def _later_generation_in_force(effective: dt.datetime, now: dt.datetime) -> bool:
    query = Generation.objects(completed_at__ne=None, effective_from__gt=effective,
                               effective_from__lte=now)
    return bool(query.count())


def _station_fields(s: StationRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": s.name, "county_code": s.county_code, "kind": s.kind}
    # An optional field the file leaves out keeps its stored value.
    if s.duty_phone is not None:
        fields["duty_phone"] = s.duty_phone
    if s.county_bureau is not None:
        fields["county_bureau"] = s.county_bureau
    return fields


def _cell_fields(c: CellRecord, *, keep_station: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": c.name,
        "ring": [[lon, lat] for lon, lat in c.ring],
        "village_code": c.village_code,
        "township_code": c.township_code,
        "county_code": c.county_code,
    }
    if not keep_station:
        fields["station_code"] = c.station_code
    return fields


def _plan(records: Iterable[tuple[str, dict[str, Any]]],
          stored: Mapping[str, Mapping[str, Any]]) -> Counts:
    """Counts a write would give, from the stored documents (dry run)."""
    created = updated = unchanged = 0
    for code, fields in records:
        doc = stored.get(code)
        if doc is None:
            created += 1
        elif all(doc.get(k) == v for k, v in fields.items()):
            unchanged += 1
        else:
            updated += 1
    return Counts(created, updated, unchanged)


def _upsert(collection: Any, ops: list[tuple[str, dict[str, Any], dict[str, Any]]], batch: int,
            advance: Callable[[int], None]) -> Counts:
    """Upsert by code, a batch per bulk_write; counts from the server's own answer."""
    created = updated = unchanged = 0
    for start in range(0, len(ops), batch):
        chunk = ops[start:start + batch]
        requests = []
        for code, fields, on_insert in chunk:
            update: dict[str, Any] = {"$set": fields}
            if on_insert:
                update["$setOnInsert"] = on_insert
            requests.append(UpdateOne({"code": code}, update, upsert=True))
        result = collection.bulk_write(requests, ordered=False)
        created += int(result.upserted_count)
        updated += int(result.modified_count)
        unchanged += int(result.matched_count) - int(result.modified_count)
        advance(len(chunk))
    return Counts(created, updated, unchanged)


def apply_due_generations(now: dt.datetime | None = None, *, batch: int = 1000) -> int:
    """Set GridCell.station_code for generations that have come into force; cells changed.

    Idempotent; run it periodically (and after a future-dated import's date).
    Each cell gets the station in force at `now`, so a later generation
    already applied is never undone by an older one applied late.
    """
    now = naive_utc(now) if now is not None else utcnow()
    due = due_generations(now)
    if not due:
        return 0
    cells: set[str] = set()
    for number in due:
        cells.update(assignments_of(number))
    in_force = stations_at(now)
    collection = GridCell._get_collection()
    changed = 0
    codes = sorted(c for c in cells if c in in_force)
    for start in range(0, len(codes), batch):
        chunk = codes[start:start + batch]
        result = collection.bulk_write(
            [UpdateOne({"code": c}, {"$set": {"station_code": in_force[c]}}) for c in chunk],
            ordered=False)
        changed += int(result.modified_count)
    for number in due:
        mark_applied(number, now)
    return changed


# --- reading back -------------------------------------------------------------


def _record(doc: Mapping[str, Any]) -> CellRecord:
    """A stored cell as a record, leniently (bad stored data is for `grid check` to report)."""
    ring = doc.get("ring") or []
    points: list[tuple[float, float]] = []
    for p in ring:
        try:
            points.append((float(p[0]), float(p[1])))
        except (TypeError, ValueError, IndexError):
            points.append((float("nan"), float("nan")))
    return CellRecord(
        code=str(doc.get("code", "")),
        name=str(doc.get("name", "")),
        ring=tuple(points),
        station_code=str(doc.get("station_code") or ""),
        village_code=str(doc.get("village_code") or ""),
        township_code=str(doc.get("township_code") or ""),
        county_code=str(doc.get("county_code") or ""),
    )


def load_cells(query: Mapping[str, Any] | None = None) -> list[CellRecord]:
    """Stored cells (all, or those matching a pymongo `query`), sorted by code."""
    docs = GridCell._get_collection().find(dict(query or {}), {"_id": 0})
    return sorted((_record(d) for d in docs), key=lambda c: c.code)


def load_stations() -> list[StationRecord]:
    """Stored stations, sorted by code. (Stations store no location: export gives null.)"""
    out = []
    for d in Station._get_collection().find({}, {"_id": 0}):
        out.append(StationRecord(
            code=str(d.get("code", "")),
            name=str(d.get("name", "")),
            county_code=str(d.get("county_code", "")),
            kind=str(d.get("kind") or "station"),
            duty_phone=d.get("duty_phone") or None,
            county_bureau=d.get("county_bureau") or None,
        ))
    return sorted(out, key=lambda s: s.code)


def grid_stats() -> dict[str, Any]:
    """Counts by county and township, cells per station, orphans, cell areas in km²."""
    cells = load_cells()
    stations = load_stations()
    station_codes = {s.code for s in stations}
    per_station = Counter(c.station_code for c in cells if c.station_code)
    areas = sorted(a / 1e6 for a in cell_areas_m2(cells) if a == a)  # NaN != NaN
    newest = (Generation.objects(completed_at__ne=None).order_by("-number")
              .only("number", "effective_from").first())
    return {
        "cells": len(cells),
        "stations": len(stations),
        "counties": dict(sorted(Counter(c.county_code for c in cells).items())),
        "townships": dict(sorted(Counter(c.township_code for c in cells).items())),
        "villages": len({c.village_code for c in cells}),
        "cells_per_station": dict(sorted(per_station.items())),
        "cells_without_station": sum(1 for c in cells if not c.station_code),
        "cells_with_unknown_station": sum(
            n for code, n in per_station.items() if code not in station_codes),
        "stations_without_cells": sorted(
            s.code for s in stations if s.kind == "station" and s.code not in per_station),
        "area_km2": ({"min": areas[0], "median": statistics.median(areas), "max": areas[-1]}
                     if areas else None),
        "generations": Generation.objects(completed_at__ne=None).count(),
        "latest_generation": (
            {"number": int(newest.number), "effective_from": newest.effective_from.isoformat()}
            if newest is not None else None),
    }
