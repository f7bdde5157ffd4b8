"""Placing reports on an in-memory grid snapshot (pure, no stores)."""

from __future__ import annotations

import math

import pytest

from grid.snapshot import CellInfo, GridSnapshot, StationInfo


def square(lon: float, lat: float, size: float = 0.01) -> list[tuple[float, float]]:
    return [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat)]


@pytest.fixture
def snapshot() -> GridSnapshot:
    cells = [
        (CellInfo("100000000001001", "A", "S1", "100000"), square(100.00, 30.00)),
        (CellInfo("100000000001002", "B", "S2", "100000"), square(100.01, 30.00)),
    ]
    stations = [
        StationInfo("S1", "one", "100000", "station", None),
        StationInfo("S2", "two", "100000", "station", None),
        StationInfo("DESK", "desk", "100000", "county_desk", None),
    ]
    return GridSnapshot(cells, stations)


def place(snapshot: GridSnapshot, **kw: object):
    args = {"lat": None, "lon": None, "grid_code": None, "home_cell": None,
            "county_code": None, "nearest_max_m": 500.0, **kw}
    return snapshot.place(**args)  # type: ignore[arg-type]


def test_gps_inside_a_cell(snapshot):
    p = place(snapshot, lat=30.005, lon=100.015)
    assert (p.cell_code, p.station_code, p.method, p.flags) == ("100000000001002", "S2", "gps", ())


def test_gps_just_outside_goes_to_the_nearest_cell_flagged(snapshot):
    p = place(snapshot, lat=30.005, lon=100.0215)  # ~145 m east of cell B
    assert p.cell_code == "100000000001002"
    assert "outside_grid_nearest_cell" in p.flags


def test_gps_wins_over_grid_code(snapshot):
    p = place(snapshot, lat=30.005, lon=100.005, grid_code="100000000001002")
    assert p.cell_code == "100000000001001"
    assert p.flags == ("gps_grid_code_disagree",)  # ...and says the two disagreed


def test_gps_and_grid_code_that_agree_are_not_flagged(snapshot):
    p = place(snapshot, lat=30.005, lon=100.005, grid_code="100000000001001")
    assert p.flags == ()


def test_grid_code_when_no_gps(snapshot):
    p = place(snapshot, grid_code="100000000001002")
    assert (p.cell_code, p.method) == ("100000000001002", "grid_code")


def test_home_cell_when_nothing_else(snapshot):
    p = place(snapshot, home_cell="100000000001001")
    assert (p.cell_code, p.method) == ("100000000001001", "reporter_home_cell")


def test_far_away_with_nothing_else_goes_to_the_county_desk_for_review(snapshot):
    p = place(snapshot, lat=31.0, lon=101.0)
    assert (p.cell_code, p.station_code, p.method) == (None, "DESK", "county_default")
    assert "unplaced_review" in p.flags


def test_empty_grid_places_nothing():
    empty = GridSnapshot([], [])
    assert place(empty, lat=30.0, lon=100.0) is None
    assert len(empty) == 0


def test_nearest_respects_the_distance_limit(snapshot):
    p = place(snapshot, lat=30.005, lon=100.04, nearest_max_m=100.0)  # ~1.8 km away
    assert p.method == "county_default"
    p = place(snapshot, lat=30.005, lon=100.04, nearest_max_m=math.inf)
    assert p.cell_code == "100000000001002"


def test_cell_size_is_the_side_of_a_square_of_its_area(snapshot):
    # 0.01° × 0.01° at 30° N: 1,112 m north-south by 963 m east-west.
    assert snapshot.cell_size_m["100000000001001"] == pytest.approx(math.sqrt(1112.0 * 963.0),
                                                                    rel=0.01)


@pytest.mark.parametrize(("precision_m", "flags"), [
    (None, ()),        # the app did not say: taken as a phone fix outdoors
    (30.0, ()),
    (900.0, ()),       # still finer than a ~1 km cell
    (1500.0, ("gps_imprecise",)),
    (50_000.0, ("gps_imprecise",)),
])
def test_a_gps_fix_vaguer_than_its_cell_is_flagged(snapshot, precision_m, flags):
    p = place(snapshot, lat=30.005, lon=100.015, precision_m=precision_m)
    assert (p.cell_code, p.method, p.flags) == ("100000000001002", "gps", flags)


def test_a_vague_fix_does_not_overrule_the_grid_code_the_reporter_named(snapshot):
    p = place(snapshot, lat=30.005, lon=100.005, grid_code="100000000001002",
              precision_m=5000.0)
    assert (p.cell_code, p.method) == ("100000000001002", "grid_code")
    assert p.flags == ("gps_grid_code_disagree", "gps_imprecise_grid_code")


def test_a_precise_fix_still_wins_over_the_grid_code(snapshot):
    p = place(snapshot, lat=30.005, lon=100.005, grid_code="100000000001002", precision_m=20.0)
    assert (p.cell_code, p.flags) == ("100000000001001", ("gps_grid_code_disagree",))
