"""Great-circle distance, destination, rings and bounding boxes."""

from __future__ import annotations

import math

import pytest
from geopy.distance import great_circle
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.distance import EARTH_RADIUS_M, bbox_around, destination, haversine_m, ring

BEIJING = (39.9042, 116.4074)
SHANGHAI = (31.2304, 121.4737)


def test_beijing_to_shanghai_matches_geopy_great_circle() -> None:
    expected = great_circle(BEIJING, SHANGHAI, radius=EARTH_RADIUS_M / 1000).meters
    assert haversine_m(*BEIJING, *SHANGHAI) == pytest.approx(expected, rel=1e-9)
    assert 1_060_000 < haversine_m(*BEIJING, *SHANGHAI) < 1_075_000


def test_one_degree_of_latitude_is_111_km() -> None:
    assert haversine_m(30.0, 116.0, 31.0, 116.0) == pytest.approx(111_195, abs=1)


def test_distance_is_zero_to_itself_and_symmetric() -> None:
    assert haversine_m(*BEIJING, *BEIJING) == 0.0
    assert haversine_m(*BEIJING, *SHANGHAI) == haversine_m(*SHANGHAI, *BEIJING)


def test_antipodes_are_half_the_circumference() -> None:
    assert haversine_m(10.0, 20.0, -10.0, -160.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_destination_north_and_east() -> None:
    lat, lon = destination(30.0, 116.0, 0.0, 111_195.08)
    assert (lat, lon) == (pytest.approx(31.0, abs=1e-6), pytest.approx(116.0, abs=1e-9))
    lat, lon = destination(0.0, 116.0, 90.0, 111_195.08)
    assert (lat, lon) == (pytest.approx(0.0, abs=1e-9), pytest.approx(117.0, abs=1e-6))


def test_destination_wraps_the_antimeridian() -> None:
    _, lon = destination(0.0, 179.9, 90.0, 50_000)
    assert -180.0 <= lon < -179.0


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(min_value=-80, max_value=80),
    lon=st.floats(min_value=-180, max_value=180),
    bearing=st.floats(min_value=0, max_value=360),
    dist=st.floats(min_value=1, max_value=2_000_000),
)
def test_destination_is_that_far_away(lat: float, lon: float, bearing: float, dist: float) -> None:
    assert haversine_m(lat, lon, *destination(lat, lon, bearing, dist)) == pytest.approx(
        dist, rel=1e-6, abs=1e-3
    )


def test_ring_is_closed_lon_lat_and_on_the_circle() -> None:
    pts = ring(*BEIJING, 1000.0, points=16)
    assert len(pts) == 17
    assert pts[0] == pts[-1]
    # First point due north, in (lon, lat) order.
    assert pts[0][0] == pytest.approx(BEIJING[1], abs=1e-9)
    assert pts[0][1] > BEIJING[0]
    for plon, plat in pts:
        assert haversine_m(*BEIJING, plat, plon) == pytest.approx(1000.0, rel=1e-6)


@pytest.mark.parametrize(("radius", "points"), [(1000.0, 2), (0.0, 32), (-5.0, 32)])
def test_ring_rejects_degenerate_circles(radius: float, points: int) -> None:
    with pytest.raises(ValueError, match="ring|radius"):
        ring(*BEIJING, radius, points=points)


def test_bbox_around_contains_the_circle_and_is_tight() -> None:
    min_lon, min_lat, max_lon, max_lat = bbox_around(*BEIJING, 10_000.0)
    for plon, plat in ring(*BEIJING, 10_000.0, points=360):
        assert min_lon - 1e-9 <= plon <= max_lon + 1e-9
        assert min_lat - 1e-9 <= plat <= max_lat + 1e-9
    # Tight: the box edges are 10 km from the centre.
    assert haversine_m(*BEIJING, max_lat, BEIJING[1]) == pytest.approx(10_000, rel=1e-6)
    assert haversine_m(*BEIJING, BEIJING[0], max_lon) == pytest.approx(10_000, rel=1e-3)


def test_bbox_around_a_pole_spans_all_longitudes() -> None:
    box = bbox_around(89.9, 10.0, 50_000.0)
    assert box == (-180.0, pytest.approx(89.45, abs=0.01), 180.0, 90.0)


def test_bbox_around_the_antimeridian_spans_all_longitudes() -> None:
    min_lon, _, max_lon, _ = bbox_around(0.0, 179.99, 10_000.0)
    assert (min_lon, max_lon) == (-180.0, 180.0)


def test_bbox_around_zero_radius_is_the_point() -> None:
    assert bbox_around(*BEIJING, 0.0) == (BEIJING[1], BEIJING[0], BEIJING[1], BEIJING[0])
