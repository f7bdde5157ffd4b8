"""Reports counted by place, category and time, and the hotspot map (重点地区).

The period's days are read from the report tallies (gateway/insight/tallies.py:
per cell, station and Beijing day, kept as reports are routed) and put in weeks
or months; everything above the cell (townships, counties, totals over
categories, H3 hexagons) is added up here from those exact counts and then
published through grid/figures.py: each figure banded from its own count, each
total guarded against the parts published beside it (docs/insight.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway import gridcache
from gateway.insight import tallies
from gateway.insight.scope import Scope
from grid.documents import GridCell
from grid.figures import Count, band, bucket_of_date, change, guard

LEVELS = ("cell", "township", "county")
UNPLACED = None  # reports no cell could place (taken by the county desk)


@dataclass(frozen=True)
class Fine:
    """The finest key the tallies give: where, what, when."""

    cell: str | None
    township: str | None
    county: str | None
    category: str
    bucket: dt.date


def places(county: str | None) -> dict[str, tuple[str, str]]:
    """cell code → (township code, county code) for the county's cells (or all)."""
    query = GridCell.objects(county_code=county) if county else GridCell.objects
    return {c.code: (c.township_code, c.county_code)
            for c in query.only("code", "township_code", "county_code")}


def fine_counts(scope: Scope, grain: str, category: str | None = None) -> dict[Fine, int]:
    """Exact counts by cell, category and bucket, from the tallies of the period's days."""
    where = places(scope.county)
    out: dict[Fine, int] = defaultdict(int)
    for cell, county, name, date, n in tallies.place_days(scope.period, scope.county,
                                                          category):
        township = where[cell][0] if cell in where else None
        if cell not in where:
            cell = UNPLACED  # no cell, or one no longer in the grid
        out[Fine(cell, township, county, name, bucket_of_date(date, grain))] += n
    return dict(out)


Area = tuple[str | None, str | None]  # (county, cell or township or county code)
Key = tuple[Area, str | None, dt.date]  # (area, category or None for all, bucket)


def _area(fine: Fine, level: str) -> Area:
    code = fine.cell if level == "cell" else fine.township if level == "township" else fine.county
    return fine.county, code


def published(fine: dict[Fine, int], by: str, with_totals: bool) -> dict[Key, Count]:
    """(area, category or None for all, bucket) → published figure at level `by`.

    Every level below `by` is published too, inside: a total is guarded against
    the parts published beside it (its categories; its cells; its townships).
    """
    levels = LEVELS[:LEVELS.index(by) + 1]
    exact: dict[str, dict[Key, int]] = {}
    for level in levels:
        sums: dict[Key, int] = defaultdict(int)
        for where, n in fine.items():
            sums[(_area(where, level), where.category, where.bucket)] += n
            if with_totals:
                sums[(_area(where, level), None, where.bucket)] += n
        exact[level] = dict(sums)
    out: dict[str, dict[Key, Count]] = {}
    for i, level in enumerate(levels):
        # The parts of each total at this level, from every level below: (area at this
        # level, category, bucket) → that level's published figures inside it. An
        # all-categories total also has the categories of each lower area as parts.
        below: list[dict[Key, list[Count]]] = []
        for lower in levels[:i]:
            up = {_area(k, lower): _area(k, level) for k in fine}
            same: dict[Key, list[Count]] = defaultdict(list)
            split: dict[Key, list[Count]] = defaultdict(list)
            for (area, category, bucket), figure in out[lower].items():
                same[(up[area], category, bucket)].append(figure)
                if category is not None and with_totals:
                    split[(up[area], None, bucket)].append(figure)
            below += [same, split]
        figures: dict[Key, Count] = {}
        categories: dict[tuple[Area, dt.date], list[Count]] = defaultdict(list)
        for total in sorted(exact[level], key=lambda k: k[1] is None):
            area, category, bucket = total
            part_sets = [parts[total] for parts in below if total in parts]
            if category is None:
                part_sets.append(categories[(area, bucket)])
            figures[total] = guard(exact[level][total], *part_sets)
            if category is not None:
                categories[(area, bucket)].append(figures[total])
        out[level] = figures
    return out[by]


def counts(scope: Scope, by: str, grain: str, category: str | None) -> dict[str, Any]:
    """The counts figure: one row per area, category and bucket with reports."""
    fine = fine_counts(scope, grain, category)
    figures = published(fine, by, with_totals=category is None)
    rows = [{"county": county, "area": area, "category": cat, "period_start": bucket,
             "reports": value}
            for ((county, area), cat, bucket), value in figures.items()]
    rows.sort(key=lambda r: (r["county"] or "", r["area"] is None, r["area"] or "",
                             r["period_start"], r["category"] is None, r["category"] or ""))
    return {"county": scope.county, "start": scope.period.start, "end": scope.period.end,
            "by": by, "every": grain, "category": category, "rows": rows}


def _over_period(scope: Scope, category: str | None) -> dict[Fine, int]:
    """Exact counts by cell and category over the whole period (one bucket: its start)."""
    where = places(scope.county)
    out: dict[Fine, int] = defaultdict(int)
    for cell, county, name, _date, n in tallies.place_days(scope.period, scope.county,
                                                           category):
        township = where[cell][0] if cell in where else None
        out[Fine(cell if cell in where else UNPLACED, township, county, name,
                 scope.period.start)] += n
    return dict(out)


def trends(scope: Scope, by: str, category: str | None) -> dict[str, Any]:
    """Each area's reports in the period against the period of the same length before it."""
    before = Scope(scope.county, scope.period.previous())
    now_fine, then_fine = _over_period(scope, category), _over_period(before, category)
    totals = category is None
    now_figures = published(now_fine, by, totals)
    then_figures = published(then_fine, by, totals)

    def exact(fine: dict[Fine, int]) -> dict[tuple[Area, str | None], int]:
        sums: dict[tuple[Area, str | None], int] = defaultdict(int)
        for key, n in fine.items():
            sums[(_area(key, by), key.category)] += n
            if totals:
                sums[(_area(key, by), None)] += n
        return sums

    now_exact, then_exact = exact(now_fine), exact(then_fine)
    now_pub = {(area, cat): v for (area, cat, _), v in now_figures.items()}
    then_pub = {(area, cat): v for (area, cat, _), v in then_figures.items()}
    rows = []
    for area, cat in sorted(set(now_exact) | set(then_exact),
                            key=lambda k: (k[0][0] or "", k[0][1] or "", k[1] or "~")):
        rows.append({"county": area[0], "area": area[1], "category": cat,
                     "reports": now_pub.get((area, cat), 0),
                     "previous": then_pub.get((area, cat), 0),
                     "change_pct": change(now_exact.get((area, cat), 0),
                                          then_exact.get((area, cat), 0))})
    return {"county": scope.county, "start": scope.period.start, "end": scope.period.end,
            "previous_start": before.period.start, "by": by, "category": category,
            "rows": rows}


def cell_totals(scope: Scope, category: str | None) -> tuple[dict[str | None, int],
                                                             dict[str | None, list[list[int]]]]:
    """Exact reports per cell over the period, and per cell its week and month parts."""
    where = places(scope.county)
    totals: dict[str | None, int] = defaultdict(int)
    weeks: dict[str | None, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    months: dict[str | None, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for cell, _county, _name, date, n in tallies.place_days(scope.period, scope.county,
                                                            category):
        if cell not in where:
            cell = UNPLACED  # no cell, or one outside the county's grid
        totals[cell] += n
        weeks[cell][bucket_of_date(date, "week")] += n
        months[cell][bucket_of_date(date, "month")] += n
    parts = {cell: [list(weeks[cell].values()), list(months[cell].values())] for cell in totals}
    return dict(totals), parts


def _guarded_cells(totals: dict[str | None, int],
                   parts: dict[str | None, list[list[int]]]) -> dict[str | None, Count]:
    """Each cell's period total guarded against its weekly and monthly figures."""
    return {cell: guard(n, *([band(p) for p in series] for series in parts[cell]))
            for cell, n in totals.items()}


def hotspots(scope: Scope, category: str | None, resolution: int | None) -> dict[str, Any]:
    """The hotspot map as GeoJSON: every grid cell (or H3 hexagon) with its reports."""
    totals, parts = cell_totals(scope, category)
    cells = _guarded_cells(totals, parts)
    snapshot = gridcache.current()
    codes = sorted(places(scope.county))
    unplaced = cells.get(UNPLACED, 0)
    if resolution is None:
        features = [_cell_feature(code, snapshot.rings.get(code, []),
                                  snapshot.cells[code].name if code in snapshot.cells else "",
                                  cells.get(code, 0)) for code in codes]
    else:
        features = _hexagons(codes, totals, cells, resolution)
    return {"type": "FeatureCollection", "features": features,
            "properties": {"county": scope.county, "start": scope.period.start.isoformat(),
                           "end": scope.period.end.isoformat(), "category": category,
                           "h3_resolution": resolution, "unplaced_reports": unplaced}}


def _cell_feature(code: str, ring: Iterable[tuple[float, float]], name: str,
                  reports: Count) -> dict[str, Any]:
    return {"type": "Feature", "id": code,
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
            "properties": {"cell": code, "name": name, "reports": reports}}


def _hexagons(codes: list[str], totals: dict[str | None, int], cells: dict[str | None, Count],
              resolution: int) -> list[dict[str, Any]]:
    """H3 hexagons holding the cells' centres, each guarded against its cells' figures."""
    import h3  # only when hexagons are asked for

    snapshot = gridcache.current()
    members: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        if code in snapshot.rings:
            lat, lon = snapshot.centre(code)
            members[h3.latlng_to_cell(lat, lon, resolution)].append(code)
    features = []
    for hexagon in sorted(members):
        inside = members[hexagon]
        exact = sum(totals.get(c, 0) for c in inside)
        figure = guard(exact, [cells.get(c, 0) for c in inside])
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(hexagon)]
        features.append({"type": "Feature", "id": hexagon,
                         "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                         "properties": {"h3": hexagon, "cells": len(inside),
                                        "reports": figure}})
    return features
