"""The in-memory cell index: point -> grid cell, exact on borders, nearest cell."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.distance import haversine_m
from grid.index import CellIndex

LON0, LAT0, SIDE, N = 116.30, 39.90, 0.01, 4

Ring = list[tuple[float, float]]


def square(lon: float, lat: float, side: float = SIDE) -> Ring:
    return [(lon, lat), (lon + side, lat), (lon + side, lat + side), (lon, lat + side), (lon, lat)]


def code(i: int, j: int) -> str:
    # Codes deliberately not in spatial order: column-major, reversed rows.
    return f"11010100100{N - 1 - j}{i}"


SQUARES: list[tuple[str, Ring]] = [
    (code(i, j), square(LON0 + i * SIDE, LAT0 + j * SIDE)) for i in range(N) for j in range(N)
]


def jittered_grid(n: int, seed: int) -> list[tuple[str, Ring]]:
    """Irregular quads sharing jittered vertices: a tiling with slanted edges."""
    rnd = np.random.default_rng(seed)
    vx = [[LON0 + i * SIDE for _ in range(n + 1)] for i in range(n + 1)]
    vy = [[LAT0 + j * SIDE for j in range(n + 1)] for _ in range(n + 1)]
    for i in range(1, n):
        for j in range(1, n):
            vx[i][j] += rnd.uniform(-0.3, 0.3) * SIDE
            vy[i][j] += rnd.uniform(-0.3, 0.3) * SIDE
    cells = []
    for i in range(n):
        for j in range(n):
            corners = ((i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1))
            ring = [(vx[a][b], vy[a][b]) for a, b in corners]
            cells.append((f"J{rnd.integers(10**6):06d}{i:02d}{j:02d}", [*ring, ring[0]]))
    return cells


def mixed_sizes() -> list[tuple[str, Ring]]:
    """A big rural cell, medium cells and a dense block of small urban cells: several levels."""
    cells: list[tuple[str, Ring]] = [("M-big", square(LON0, LAT0, 0.08))]
    for i in range(8):
        cells.append((f"M-med-{i}", square(LON0 + 0.08, LAT0 + i * 0.01, 0.01)))
    small = 0.00125
    for i in range(16):
        for j in range(16):
            ring = square(LON0 + 0.09 + i * small, LAT0 + j * small, small)
            cells.append((f"M-small-{i:02d}{j:02d}", ring))
    # Bad data on purpose: a small cell overlapping the big and a medium one,
    # which sit in other levels of the index.
    cells.append(("M-0-overlap", square(LON0 + 0.0795, LAT0 + 0.0005, 0.002)))
    return cells


@pytest.fixture(scope="module")
def grid() -> CellIndex:
    return CellIndex.build(SQUARES)


def brute_force(cells: Sequence[tuple[str, Ring]], lat: float, lon: float) -> str | None:
    point = shapely.Point(lon, lat)
    hits = [c for c, ring in cells if shapely.Polygon(ring).intersects(point)]
    return min(hits) if hits else None


def test_len_and_codes(grid: CellIndex) -> None:
    assert len(grid) == N * N
    assert grid.codes == tuple(sorted(c for c, _ in SQUARES))


@pytest.mark.parametrize(("i", "j"), [(0, 0), (3, 0), (1, 2), (3, 3)])
def test_point_inside_a_cell(grid: CellIndex, i: int, j: int) -> None:
    lat = LAT0 + (j + 0.5) * SIDE
    lon = LON0 + (i + 0.5) * SIDE
    assert grid.locate(lat, lon) == code(i, j)
    # Just inside the corners too.
    assert grid.locate(LAT0 + j * SIDE + 1e-7, LON0 + i * SIDE + 1e-7) == code(i, j)
    assert grid.locate(LAT0 + (j + 1) * SIDE - 1e-7, LON0 + (i + 1) * SIDE - 1e-7) == code(i, j)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (LAT0 - 0.001, LON0 + 0.005),
        (LAT0 + 0.005, LON0 + N * SIDE + 1e-6),
        (0.0, 0.0),
        (-LAT0, -LON0),
        (math.nan, LON0 + 0.005),
        (LAT0 + 0.005, math.inf),
    ],
)
def test_point_outside_every_cell(grid: CellIndex, lat: float, lon: float) -> None:
    assert grid.locate(lat, lon) is None


def test_shared_edge_goes_to_the_smallest_code(grid: CellIndex) -> None:
    # Vertical edge between columns 1 and 2 in row 1.
    lat, lon = LAT0 + 1.5 * SIDE, LON0 + 2 * SIDE
    assert grid.locate(lat, lon) == min(code(1, 1), code(2, 1))
    # Horizontal edge between rows 2 and 3 in column 0.
    lat, lon = LAT0 + 3 * SIDE, LON0 + 0.5 * SIDE
    assert grid.locate(lat, lon) == min(code(0, 2), code(0, 3))


def test_shared_corner_goes_to_the_smallest_of_four(grid: CellIndex) -> None:
    lat, lon = LAT0 + 2 * SIDE, LON0 + 2 * SIDE
    expected = min(code(1, 1), code(2, 1), code(1, 2), code(2, 2))
    assert grid.locate(lat, lon) == expected
    assert brute_force(SQUARES, lat, lon) == expected


def test_outer_border_belongs_to_its_cell(grid: CellIndex) -> None:
    assert grid.locate(LAT0, LON0 + 0.5 * SIDE) == code(0, 0)
    assert grid.locate(LAT0 + 0.5 * SIDE, LON0 + N * SIDE) == code(N - 1, 0)


def test_nearest_inside_is_the_cell_at_zero(grid: CellIndex) -> None:
    assert grid.nearest(LAT0 + 0.005, LON0 + 0.005, 100.0) == (code(0, 0), 0.0)


def test_nearest_within_distance(grid: CellIndex) -> None:
    # ~500 m east of the grid's east edge, level with row 2.
    lat = LAT0 + 2.5 * SIDE
    east = LON0 + N * SIDE
    lon = east + 500 / (111_195 * math.cos(math.radians(lat)))
    found = grid.nearest(lat, lon, 1_000.0)
    assert found is not None
    assert found[0] == code(N - 1, 2)
    assert found[1] == pytest.approx(haversine_m(lat, lon, lat, east), rel=1e-3)
    assert found[1] == pytest.approx(500.0, rel=1e-3)


def test_nearest_beyond_distance_is_none(grid: CellIndex) -> None:
    lat = LAT0 + 2.5 * SIDE
    lon = LON0 + N * SIDE + 500 / (111_195 * math.cos(math.radians(lat)))
    assert grid.nearest(lat, lon, 400.0) is None
    assert grid.nearest(lat, lon, 0.0) is None


def test_nearest_uses_metres_not_degrees(grid: CellIndex) -> None:
    # 0.006 deg south (~667 m) is farther in degrees than 0.007 deg west,
    # but at 40 N 0.007 deg of longitude is only ~596 m: west wins.
    lat, lon = LAT0 - 0.006, LON0 - 0.007
    sw = code(0, 0)
    south = grid.nearest(LAT0 - 0.006, LON0 + 0.015, 10_000.0)
    west = grid.nearest(LAT0 + 0.015, LON0 - 0.007, 10_000.0)
    assert south is not None
    assert west is not None
    assert west[1] < south[1]
    corner = grid.nearest(lat, lon, 10_000.0)
    assert corner is not None
    assert corner[0] == sw
    assert corner[1] == pytest.approx(haversine_m(lat, lon, LAT0, LON0), rel=2e-3)


def test_nearest_without_limit_and_on_a_tie(grid: CellIndex) -> None:
    far = grid.nearest(LAT0 + 2 * SIDE, LON0 + 1.0, math.inf)
    assert far is not None
    # Level with the corner shared by rows 1 and 2: equidistant, smallest code.
    assert far[0] == min(code(N - 1, 1), code(N - 1, 2))
    lat = LAT0 + 2 * SIDE
    assert far[1] == pytest.approx(haversine_m(lat, LON0 + 1.0, lat, LON0 + N * SIDE), rel=2e-3)


def test_nearest_rejects_negative_distance(grid: CellIndex) -> None:
    with pytest.raises(ValueError, match="max_distance_m"):
        grid.nearest(LAT0, LON0, -1.0)


def test_locate_many_agrees_with_locate(grid: CellIndex) -> None:
    rnd = np.random.default_rng(7)
    lats = (LAT0 - 0.005 + rnd.random(500) * 0.05).tolist()
    lons = (LON0 - 0.005 + rnd.random(500) * 0.05).tolist()
    # Borders, corners and invalid points too.
    lats += [LAT0 + 2 * SIDE, LAT0 + 1.5 * SIDE, LAT0, math.nan]
    lons += [LON0 + 2 * SIDE, LON0 + 2 * SIDE, LON0, LON0]
    many = grid.locate_many(lats, lons)
    assert many == [grid.locate(a, b) for a, b in zip(lats, lons, strict=True)]
    assert sum(m is not None for m in many) > 200
    assert None in many


def test_locate_many_checks_lengths(grid: CellIndex) -> None:
    assert grid.locate_many([], []) == []
    with pytest.raises(ValueError, match="latitudes"):
        grid.locate_many([1.0, 2.0], [1.0])


def test_open_rings_are_closed() -> None:
    index = CellIndex.build([("A", square(LON0, LAT0)[:-1])])
    assert index.locate(LAT0 + 0.005, LON0 + 0.005) == "A"


def test_rings_as_lists_from_the_database() -> None:
    ring = [[lon, lat] for lon, lat in square(LON0, LAT0)]
    index = CellIndex.build([("A", ring)])
    assert index.locate(LAT0 + 0.005, LON0 + 0.005) == "A"


def test_empty_index_finds_nothing() -> None:
    index = CellIndex.build([])
    assert len(index) == 0
    assert index.codes == ()
    assert index.locate(LAT0, LON0) is None
    assert index.locate_many([LAT0], [LON0]) == [None]
    assert index.nearest(LAT0, LON0, math.inf) is None


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([("A", square(LON0, LAT0)), ("A", square(LON0 + 1, LAT0))], "duplicate"),
        ([("B", [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)])], "not valid"),
        ([("C", [(0.0, 0.0), (1.0, 1.0)])], "at least 3"),
        ([("D", [(0.0, 0.0, 5.0), (1.0, 1.0, 5.0), (1.0, 0.0, 5.0)])], r"\(lon, lat\)"),
        ([("E", [(0.0, 0.0), (math.nan, 1.0), (1.0, 0.0)])], "finite"),
    ],
)
def test_bad_cells_are_rejected(cells: list[tuple[str, Ring]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CellIndex.build(cells)


JITTERED = jittered_grid(8, seed=3)
JITTERED_INDEX = CellIndex.build(JITTERED)
MIXED = mixed_sizes()
MIXED_INDEX = CellIndex.build(MIXED)
VERTICES = sorted({pt for _, ring in JITTERED for pt in ring})


def test_mixed_sizes_use_several_levels() -> None:
    assert len(MIXED_INDEX._levels) >= 3


def test_overlapping_cells_give_the_smallest_code() -> None:
    # M-0-overlap sorts before M-big and M-med-0, whose parts it covers.
    assert MIXED_INDEX.locate(LAT0 + 0.001, LON0 + 0.0799) == "M-0-overlap"
    assert MIXED_INDEX.locate(LAT0 + 0.001, LON0 + 0.0801) == "M-0-overlap"
    assert MIXED_INDEX.locate(LAT0 + 0.001, LON0 + 0.0780) == "M-big"
    assert MIXED_INDEX.locate(LAT0 + 0.001, LON0 + 0.0850) == "M-med-0"
    assert MIXED_INDEX.locate(LAT0 + 0.001, LON0 + 0.0901) == "M-small-0000"


@settings(max_examples=400, deadline=None)
@given(
    fx=st.floats(min_value=-0.05, max_value=1.05),
    fy=st.floats(min_value=-0.05, max_value=1.05),
)
def test_locate_matches_brute_force_on_an_irregular_grid(fx: float, fy: float) -> None:
    lat, lon = LAT0 + fy * 8 * SIDE, LON0 + fx * 8 * SIDE
    expected = brute_force(JITTERED, lat, lon)
    assert JITTERED_INDEX.locate(lat, lon) == expected
    assert JITTERED_INDEX.locate_many([lat], [lon]) == [expected]


@settings(max_examples=200, deadline=None)
@given(
    vertex=st.sampled_from(VERTICES),
    neighbour=st.sampled_from(VERTICES),
    t=st.sampled_from([0.0, 0.5, 0.25, 1 / 3, 1.0]) | st.floats(0.0, 1.0),
)
def test_locate_matches_brute_force_on_vertices_and_edges(
    vertex: tuple[float, float], neighbour: tuple[float, float], t: float
) -> None:
    # Points on or within rounding of the segment between two vertices: the
    # cases where a ray cast alone would disagree with GEOS.
    lon = vertex[0] + t * (neighbour[0] - vertex[0])
    lat = vertex[1] + t * (neighbour[1] - vertex[1])
    assert JITTERED_INDEX.locate(lat, lon) == brute_force(JITTERED, lat, lon)


@settings(max_examples=300, deadline=None)
@given(
    fx=st.floats(min_value=-0.02, max_value=1.02) | st.sampled_from([0.0, 0.5, 0.72, 0.8, 1.0]),
    fy=st.floats(min_value=-0.02, max_value=1.02) | st.sampled_from([0.0, 0.0125, 0.25, 1.0]),
)
def test_locate_matches_brute_force_across_levels(fx: float, fy: float) -> None:
    lat, lon = LAT0 + fy * 0.08, LON0 + fx * 0.11
    expected = brute_force(MIXED, lat, lon)
    assert MIXED_INDEX.locate(lat, lon) == expected
    assert MIXED_INDEX.locate_many([lat], [lon]) == [expected]
