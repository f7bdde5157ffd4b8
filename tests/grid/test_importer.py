"""Importing grid GeoJSON into the store, jurisdiction generations, grid figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pymongo.collection import Collection

from gateway import sample
from grid.documents import GridCell, Station
from grid.geojson import ParsedGrid, load_feature_collection, parse_feature_collection
from grid.importer import (
    Counts,
    apply_due_generations,
    grid_stats,
    import_grid,
    load_cells,
    load_stations,
)
from grid.jurisdiction import (
    Generation,
    Jurisdiction,
    latest_change,
    record_generation,
    station_at,
    station_for,
    stations_at,
)

SAMPLE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "sample-grid.geojson"
LON, LAT = 105.30, 27.80  # well away from the sample county
SIZE = 0.005
T0 = dt.datetime(2026, 1, 1)
T1 = dt.datetime(2026, 3, 1)
T2 = dt.datetime(2026, 6, 1)
NOW = dt.datetime(2026, 9, 1)


def square(i: int, lon: float = LON, lat: float = LAT) -> list[list[float]]:
    x = lon + i * SIZE
    return [[x, lat], [x + SIZE, lat], [x + SIZE, lat + SIZE], [x, lat + SIZE], [x, lat]]


def cell_feature(i: int, station: str = "530628-A", name: str | None = None,
                 ring: Any = None) -> dict[str, Any]:
    code = f"530628001001{i + 1:03d}"
    return {"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring or square(i)]},
            "properties": {"kind": "cell", "code": code, "name": name or f"网格{i + 1}",
                           "station_code": station}}


def station_feature(code: str, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": None,
            "properties": {"kind": "station", "code": code, "name": f"{code}派出所",
                           "county_code": "530628", **props}}


def grid_file(cells: int = 4, station_of: Any = None, **kw: Any) -> ParsedGrid:
    """Two stations and `cells` cells in a row, in county 530628."""
    features = [station_feature("530628-A"), station_feature("530628-B")]
    for i in range(cells):
        features.append(cell_feature(i, station_of(i) if station_of else "530628-A", **kw))
    return parse_feature_collection({"type": "FeatureCollection", "features": features})


def code(i: int) -> str:
    return f"530628001001{i + 1:03d}"


# --- importing -----------------------------------------------------------------------


def test_import_into_an_empty_store(app):
    result = import_grid(grid_file(), effective_from=None)
    assert result.imported
    assert result.stations == Counts(created=2)
    assert result.cells == Counts(created=4)
    assert result.generation is None
    stored = GridCell.objects(code=code(0)).get()  # mongoengine reads what pymongo wrote
    assert (stored.name, stored.station_code, stored.county_code, stored.township_code,
            stored.village_code) == ("网格1", "530628-A", "530628", "530628001000",
                                     "530628001001")
    assert stored.ring == square(0)
    assert Station.objects(code="530628-B").get().kind == "station"


def test_re_import_is_idempotent_and_counts_changes(app):
    import_grid(grid_file(), effective_from=None)
    again = import_grid(grid_file(), effective_from=None)
    assert (again.stations, again.cells) == (Counts(unchanged=2), Counts(unchanged=4))
    renamed = grid_file(station_of=lambda i: "530628-B" if i == 3 else "530628-A")
    changed = import_grid(renamed, effective_from=None)
    assert changed.cells == Counts(updated=1, unchanged=3)
    assert GridCell.objects(code=code(3)).get().station_code == "530628-B"
    assert GridCell.objects.count() == 4


def test_an_optional_station_field_left_out_keeps_its_stored_value(app):
    features = [station_feature("530628-A", duty_phone="+8613800009999")]
    import_grid(parse_feature_collection({"type": "FeatureCollection", "features": features}),
                effective_from=None)
    import_grid(grid_file(cells=0), effective_from=None)
    assert Station.objects(code="530628-A").get().duty_phone == "+8613800009999"


def test_one_bulk_write_per_batch(app, monkeypatch):
    calls: list[int] = []
    real = Collection.bulk_write

    def counting(self, requests, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(requests))
        return real(self, requests, *args, **kwargs)

    monkeypatch.setattr(Collection, "bulk_write", counting)
    progress: list[tuple[int, int]] = []
    result = import_grid(grid_file(cells=5), effective_from=None, batch=2,
                         progress=lambda done, total: progress.append((done, total)))
    assert result.cells == Counts(created=5)
    assert calls == [2, 2, 2, 1]  # the 2 stations, then 5 cells in batches of 2
    assert progress == [(2, 7), (4, 7), (6, 7), (7, 7)]


def test_the_sample_file_is_the_sample_county(county):
    parsed = load_feature_collection(SAMPLE_FILE.read_bytes())
    assert parsed.problems == ()
    result = import_grid(parsed, effective_from=None)
    assert result.stations == Counts(unchanged=4)
    assert result.cells == Counts(unchanged=48)
    assert result.problems == ()


def test_a_cell_added_to_the_sample_county_uses_a_stored_station(county):
    ring = GridCell.objects(code=sample.cell_code(2, 3, 3)).get().ring
    east = max(p[0] for p in ring)
    south, north = min(p[1] for p in ring), max(p[1] for p in ring)
    new_ring = [[east, south], [east + SIZE, south], [east + SIZE, north], [east, north],
                [east, south]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [new_ring]},
               "properties": {"kind": "cell", "code": "530627101004009", "name": "新设网格",
                              "station_code": "530627-PJ"}}
    # Read without knowing the stored stations: the importer checks them itself.
    parsed = parse_feature_collection({"type": "FeatureCollection", "features": [feature]})
    result = import_grid(parsed, effective_from=None)
    assert result.imported, result.problems
    assert result.cells == Counts(created=1)
    assert GridCell.objects.count() == 49


def test_refuses_a_file_with_problems_and_writes_nothing(app):
    bowtie = [[LON, LAT], [LON + SIZE, LAT + SIZE], [LON + SIZE, LAT], [LON, LAT + SIZE],
              [LON, LAT]]
    features = [station_feature("530628-A"), cell_feature(0), cell_feature(1, ring=bowtie)]
    parsed = parse_feature_collection({"type": "FeatureCollection", "features": features})
    result = import_grid(parsed, effective_from=T0)
    assert not result.imported
    assert [(p.code, p.kind) for p in result.blocking] == [(code(1), "invalid_polygon")]
    assert GridCell.objects.count() == 0
    assert Station.objects.count() == 0
    assert Generation.objects.count() == 0


def test_refuses_a_station_neither_in_the_file_nor_stored(app):
    features = [cell_feature(0, station="530628-Z")]
    parsed = parse_feature_collection({"type": "FeatureCollection", "features": features})
    result = import_grid(parsed, effective_from=None)
    assert not result.imported
    assert [(p.code, p.kind) for p in result.problems] == [(code(0), "unknown_station")]
    assert GridCell.objects.count() == 0


def test_refuses_a_cell_overlapping_a_stored_one(county):
    ring = GridCell.objects(code=sample.cell_code(0, 0, 0)).get().ring
    west, south = min(p[0] for p in ring), min(p[1] for p in ring)
    over = [[west + 0.001, south + 0.001], [west + 0.004, south + 0.001],
            [west + 0.004, south + 0.004], [west + 0.001, south + 0.004],
            [west + 0.001, south + 0.001]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [over]},
               "properties": {"kind": "cell", "code": "530627001001009", "name": "重叠",
                              "station_code": "530627-WF"}}
    parsed = parse_feature_collection({"type": "FeatureCollection", "features": [feature]})
    result = import_grid(parsed, effective_from=None)
    assert not result.imported
    (problem,) = result.blocking
    assert (problem.kind, problem.code, problem.related) == (
        "overlap", sample.cell_code(0, 0, 0), ("530627001001009",))
    assert GridCell.objects.count() == 48


def test_a_dry_run_counts_and_writes_nothing(app):
    import_grid(grid_file(cells=2), effective_from=None)
    result = import_grid(grid_file(cells=3, name="改名"), effective_from=T0, dry_run=True)
    assert (result.imported, result.dry_run) == (False, True)
    assert result.stations == Counts(unchanged=2)
    assert result.cells == Counts(created=1, updated=2)
    assert GridCell.objects.count() == 2
    assert GridCell.objects(code=code(0)).get().name == "网格1"
    assert Generation.objects.count() == 0


def test_a_gap_is_a_warning_that_does_not_stop_the_import(app):
    features = [station_feature("530628-A")]
    n = 0
    for i in range(3):
        for j in range(3):
            if (i, j) == (1, 1):
                continue
            n += 1
            ring = square(i, lat=LAT + j * SIZE)
            features.append({"type": "Feature",
                             "geometry": {"type": "Polygon", "coordinates": [ring]},
                             "properties": {"kind": "cell", "code": f"530628001001{n:03d}",
                                            "name": "x", "station_code": "530628-A"}})
    parsed = parse_feature_collection({"type": "FeatureCollection", "features": features})
    result = import_grid(parsed, effective_from=None)
    assert result.imported
    assert [p.kind for p in result.problems] == ["gap"]


# --- generations ---------------------------------------------------------------------


def test_station_at_picks_the_latest_in_force():
    history = [(T1, "B"), (T0, "A"), (T2, "C")]  # any order
    assert station_at([], T1) is None
    assert station_at(history, T0 - dt.timedelta(seconds=1)) is None
    assert station_at(history, T0) == "A"  # effective_from is inclusive
    assert station_at(history, T1 - dt.timedelta(microseconds=1)) == "A"
    assert station_at(history, T1) == "B"
    assert station_at(history, NOW) == "C"
    assert station_at([(T0, "A"), (T0, "B")], T1) == "B"  # same date: the later entry


def test_two_generations_route_by_the_time_a_report_was_made(app):
    first = import_grid(grid_file(), effective_from=T0, now=NOW)
    second = import_grid(grid_file(station_of=lambda i: "530628-B" if i < 2 else "530628-A"),
                         effective_from=T1, now=NOW)
    assert (first.generation, second.generation) == (1, 2)
    before, between, after = T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1), NOW
    assert stations_at(before) == {}
    assert stations_at(between) == {code(i): "530628-A" for i in range(4)}
    assert stations_at(after) == {code(0): "530628-B", code(1): "530628-B",
                                  code(2): "530628-A", code(3): "530628-A"}
    assert station_for(code(0), between) == "530628-A"
    assert station_for(code(0), after) == "530628-B"
    assert station_for(code(0), before) is None
    assert latest_change(NOW) == T1
    # Both were in force at import: the cells hold the current assignment.
    assert GridCell.objects(code=code(0)).get().station_code == "530628-B"


def test_a_generation_covering_some_cells_leaves_the_others_as_they_were(app):
    record_generation({code(0): "A", code(1): "A"}, T0, "all")
    record_generation({code(1): "B"}, T1, "one cell moves")
    assert stations_at(NOW) == {code(0): "A", code(1): "B"}


def test_aware_times_are_taken_as_utc(app):
    beijing = dt.timezone(dt.timedelta(hours=8))
    record_generation({code(0): "A"}, dt.datetime(2026, 3, 1, 8, 0, tzinfo=beijing), "")
    assert Generation.objects.get().effective_from == dt.datetime(2026, 3, 1, 0, 0)
    assert station_for(code(0), dt.datetime(2026, 3, 1, 7, 59, tzinfo=beijing)) is None
    assert station_for(code(0), dt.datetime(2026, 3, 1, 0, 0)) == "A"


def test_recording_the_same_generation_again_is_a_no_op(app):
    first = record_generation({code(0): "A", code(1): "B"}, T0, "import")
    again = record_generation({code(1): "B", code(0): "A"}, T0, "import, re-run")
    assert again == first
    assert Generation.objects.count() == 1
    assert Jurisdiction.objects.count() == 2
    other = record_generation({code(0): "A", code(1): "A"}, T0, "a real change")
    assert other == first + 1


def test_a_generation_left_incomplete_by_a_crash_is_invisible(app):
    record_generation({code(0): "A"}, T0, "good")
    Generation(number=2, effective_from=T1).save()  # claimed, rows half written, then a crash
    Jurisdiction(generation=2, effective_from=T1, cell_code=code(0), station_code="X").save()
    assert stations_at(NOW) == {code(0): "A"}
    assert station_for(code(0), NOW) == "A"
    assert record_generation({code(0): "B"}, T1, "re-run") == 3
    assert stations_at(NOW) == {code(0): "B"}


def test_record_generation_needs_assignments(app):
    with pytest.raises(ValueError, match="at least one"):
        record_generation({}, T0, "")


def test_a_future_generation_waits_for_its_date(app):
    import_grid(grid_file(), effective_from=None)
    moved = grid_file(cells=5, station_of=lambda i: "530628-B")
    result = import_grid(moved, effective_from=T2, now=T1)
    assert result.generation == 1
    assert result.deferred == 4  # the four existing cells; the new one has no other station
    assert result.cells == Counts(created=1, unchanged=4)
    assert {c.code: c.station_code for c in load_cells()} == {
        code(0): "530628-A", code(1): "530628-A", code(2): "530628-A", code(3): "530628-A",
        code(4): "530628-B"}
    assert apply_due_generations(T1) == 0  # not yet
    assert apply_due_generations(T2) == 4
    assert {c.station_code for c in load_cells()} == {"530628-B"}
    assert apply_due_generations(NOW) == 0  # applied once


def test_a_back_dated_import_does_not_undo_a_later_generation_in_force(app):
    import_grid(grid_file(station_of=lambda i: "530628-B"), effective_from=T1, now=NOW)
    import_grid(grid_file(station_of=lambda i: "530628-A"), effective_from=T0, now=NOW)
    assert {c.station_code for c in load_cells()} == {"530628-B"}
    assert stations_at(T0) == {code(i): "530628-A" for i in range(4)}


# --- figures -------------------------------------------------------------------------


def test_grid_stats_of_the_sample_county(county):
    stats = grid_stats()
    assert stats["cells"] == 48
    assert stats["stations"] == 4
    assert stats["counties"] == {"530627": 48}
    assert stats["townships"] == {"530627001000": 16, "530627002000": 16, "530627101000": 16}
    assert stats["villages"] == 12
    assert stats["cells_per_station"] == {"530627-NT": 16, "530627-PJ": 16, "530627-WF": 16}
    assert stats["cells_without_station"] == 0
    assert stats["cells_with_unknown_station"] == 0
    assert stats["stations_without_cells"] == []  # the county desk takes no cells
    area = stats["area_km2"]
    assert area["min"] == pytest.approx(0.5, rel=0.01)
    assert area["max"] == pytest.approx(0.5, rel=0.01)
    assert stats["generations"] == 0
    assert stats["latest_generation"] is None


def test_grid_stats_counts_orphans(app):
    import_grid(grid_file(cells=2), effective_from=T0, now=NOW)
    GridCell.objects(code=code(1)).update_one(set__station_code="530628-GONE")
    stats = grid_stats()
    assert stats["cells_with_unknown_station"] == 1
    assert stats["stations_without_cells"] == ["530628-B"]
    assert stats["latest_generation"] == {"number": 1, "effective_from": T0.isoformat()}
    assert [s.code for s in load_stations()] == ["530628-A", "530628-B"]


def test_progress_counts_generation_rows_too(app):
    progress: list[tuple[int, int]] = []
    import_grid(grid_file(cells=3), effective_from=T0, now=NOW, batch=2,
                progress=lambda done, total: progress.append((done, total)))
    # 2 stations + 3 cells + 3 generation rows; never backwards, ends complete.
    assert progress[-1] == (8, 8)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert {t for _, t in progress} == {8}


def test_a_file_of_stations_only_records_no_generation(app):
    result = import_grid(grid_file(cells=0), effective_from=T0, now=NOW)
    assert (result.imported, result.generation) == (True, None)
    assert result.stations == Counts(created=2)


def test_progress_completes_when_the_generation_was_already_recorded(app):
    import_grid(grid_file(cells=3), effective_from=T0, now=NOW)
    progress: list[tuple[int, int]] = []
    result = import_grid(grid_file(cells=3), effective_from=T0, now=NOW,
                         progress=lambda done, total: progress.append((done, total)))
    assert result.generation == 1
    assert progress[-1] == (8, 8)
