"""Alert rings: the schedule's rules, and which cells a ring covers."""

from __future__ import annotations

import pytest

from geo.distance import destination
from grid.alerts import DEFAULT_RINGS, Ring, RingCoverage, ring_problems

LAT, LON = 27.44, 104.87


def square(lat: float, lon: float, half_km: float) -> list[tuple[float, float]]:
    """A closed (lon, lat) ring of a square of side 2 × half_km centred on (lat, lon)."""
    north = destination(lat, lon, 0, half_km * 1000)[0]
    south = destination(lat, lon, 180, half_km * 1000)[0]
    east = destination(lat, lon, 90, half_km * 1000)[1]
    west = destination(lat, lon, 270, half_km * 1000)[1]
    return [(west, south), (east, south), (east, north), (west, north), (west, south)]


def test_the_default_schedule_is_sound():
    assert ring_problems(DEFAULT_RINGS) == []
    assert [(r.radius_m, r.delay_s) for r in DEFAULT_RINGS] == [
        (1000, 0), (10_000, 1800), (100_000, 3600)]


@pytest.mark.parametrize(("rings", "says"), [
    ([Ring(0, 0)], "more than 0 km"),
    ([Ring(5_000_000, 0)], "at most 500 km, got 5000 km"),
    ([Ring(float("nan"), 0)], "more than 0 km"),
    ([Ring(10_000, 0), Ring(5_000, 60)], "wider than the one before"),
    ([Ring(1_000, 600), Ring(5_000, 60)], "no earlier than the one before"),
    ([Ring(1_000, -60)], "between 0 and 1440 minutes"),
    ([], "at least one ring"),
    ([Ring(1000.0 * k, 0) for k in range(1, 9)], "at most 6 rings"),
])
def test_a_bad_schedule_is_explained(rings, says):
    assert any(says in problem for problem in ring_problems(rings))


def test_500_km_is_allowed():
    assert ring_problems([Ring(500_000, 0)]) == []


def test_a_cell_is_covered_by_its_nearest_part_not_its_centre():
    # A 2 km square whose centre is 1.5 km east: its west edge is 0.5 km away.
    east = destination(LAT, LON, 90, 1500)
    far = destination(LAT, LON, 90, 5000)
    cover = RingCoverage({"near": square(*east, 1.0), "far": square(*far, 1.0),
                          "here": square(LAT, LON, 0.1)})
    assert cover.covered(LAT, LON, 600) == {"near", "here"}
    assert cover.covered(LAT, LON, 400) == {"here"}
    assert cover.covered(LAT, LON, 4100) == {"near", "here", "far"}


def test_a_ring_of_100_km_reaches_cells_100_km_away_in_every_direction():
    cells = {}
    for bearing in range(0, 360, 45):
        cells[f"in{bearing}"] = square(*destination(LAT, LON, bearing, 98_000), 0.5)
        cells[f"out{bearing}"] = square(*destination(LAT, LON, bearing, 103_000), 0.5)
    covered = RingCoverage(cells).covered(LAT, LON, 100_000)
    assert covered == {f"in{b}" for b in range(0, 360, 45)}


def test_each_ring_adds_only_new_cells():
    cells = {f"c{km}": square(*destination(LAT, LON, 0, km * 1000), 0.2)
             for km in (0, 5, 50, 300)}
    cover = RingCoverage(cells)
    assert cover.widening(LAT, LON, [1_000, 10_000, 100_000, 500_000]) == [
        {"c0"}, {"c5"}, {"c50"}, {"c300"}]


def test_no_cells_no_coverage():
    assert RingCoverage({}).covered(LAT, LON, 1000) == set()
