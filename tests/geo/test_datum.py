"""Datum conversion: WGS-84 <-> GCJ-02 / BD-09."""

from __future__ import annotations

import math
import warnings

import prcoords
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geo.datum import DATUMS, from_wgs84, in_mainland_china, to_wgs84
from geo.distance import haversine_m

CHINA_POINTS = [
    ("Beijing Tiananmen", 39.9087, 116.3975),
    ("Shanghai Pudong", 31.2304, 121.4737),
    ("Shenzhen", 22.5431, 114.0579),
    ("Urumqi", 43.8256, 87.6168),
    ("Lhasa", 29.6520, 91.1721),
    ("Harbin", 45.8038, 126.5350),
]


def test_datums_are_the_three_supported() -> None:
    assert DATUMS == ("wgs84", "gcj02", "bd09")


# Published reference values: eviltransform's test vectors (WGS-84 -> GCJ-02).
@pytest.mark.parametrize(
    ("wgs", "gcj"),
    [
        ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
        ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
        ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ],
)
def test_wgs84_to_gcj02_matches_reference_vectors(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lat, lon = from_wgs84(*wgs, "gcj02")
    assert lat == pytest.approx(gcj[0], abs=1e-9)
    assert lon == pytest.approx(gcj[1], abs=1e-9)


def test_gcj02_to_bd09_matches_reference_vector() -> None:
    # wandergis/coordtransform README: gcj02tobd09(116.404, 39.915).
    wgs = to_wgs84(39.915, 116.404, "gcj02")
    lat, lon = from_wgs84(*wgs, "bd09")
    assert lat == pytest.approx(39.92133699351021, abs=1e-7)
    assert lon == pytest.approx(116.41036949371029, abs=1e-7)


@pytest.mark.parametrize(("name", "lat", "lon"), CHINA_POINTS)
def test_gcj02_offset_in_china_is_hundreds_of_metres(name: str, lat: float, lon: float) -> None:
    shifted = from_wgs84(lat, lon, "gcj02")
    assert 50 < haversine_m(lat, lon, *shifted) < 1000, name


@pytest.mark.parametrize(("name", "lat", "lon"), CHINA_POINTS)
@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_round_trip_in_china_within_a_metre(name: str, lat: float, lon: float, datum: str) -> None:
    back = to_wgs84(*from_wgs84(lat, lon, datum), datum)
    assert haversine_m(lat, lon, *back) < 1.0, name


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(min_value=18.0, max_value=53.0),
    lon=st.floats(min_value=74.0, max_value=134.0),
    datum=st.sampled_from(["gcj02", "bd09"]),
)
def test_round_trip_anywhere_in_china(lat: float, lon: float, datum: str) -> None:
    # Exact everywhere inside; within ~1 km of the boundary two points share one
    # GCJ-02 reading (see geo/datum.py), so those are left to the next test.
    unshifted = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    assume(in_mainland_china(lat, lon) or not in_mainland_china(unshifted.lat, unshifted.lon))
    back = to_wgs84(*from_wgs84(lat, lon, datum), datum)
    assert haversine_m(lat, lon, *back) < 1.0


@pytest.mark.parametrize(
    ("lat", "lon"), [(51.5074, -0.1278), (40.7128, -74.0060), (-33.8688, 151.2093)]
)
def test_gcj02_is_wgs84_outside_china_without_warnings(lat: float, lon: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # prcoords warns per call if asked abroad
        assert from_wgs84(lat, lon, "gcj02") == (lat, lon)
        assert to_wgs84(lat, lon, "gcj02") == (lat, lon)


def test_bd09_keeps_baidus_offset_outside_china_and_round_trips() -> None:
    lat, lon = 51.5074, -0.1278
    bd = from_wgs84(lat, lon, "bd09")
    assert haversine_m(lat, lon, *bd) > 100
    assert haversine_m(lat, lon, *to_wgs84(*bd, "bd09")) < 1.0


def test_wgs84_is_identity() -> None:
    assert to_wgs84(39.9, 116.4, "wgs84") == (39.9, 116.4)
    assert from_wgs84(39.9, 116.4, "wgs84") == (39.9, 116.4)


@pytest.mark.parametrize("spelling", ["GCJ-02", "gcj_02", " Gcj02 "])
def test_datum_spellings_from_clients_are_accepted(spelling: str) -> None:
    assert to_wgs84(39.9, 116.4, spelling) == to_wgs84(39.9, 116.4, "gcj02")


@pytest.mark.parametrize("func", [to_wgs84, from_wgs84])
def test_unknown_datum_is_named_in_the_error(func: object) -> None:
    with pytest.raises(ValueError, match="'cgcs2000'"):
        func(39.9, 116.4, "cgcs2000")  # type: ignore[operator]


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 116.4), (39.9, 181.0), (math.nan, 116.4)])
def test_impossible_coordinates_are_rejected(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="lat="):
        to_wgs84(lat, lon, "gcj02")


# Inside prcoords' rectangle but outside the mainland: no GCJ-02 shift there.
ABROAD_IN_THE_RECTANGLE = [
    ("Seoul", 37.5665, 126.9780), ("Busan", 35.1796, 129.0756), ("Pyongyang", 39.0392, 125.7625),
    ("Sinuiju", 40.1006, 124.3981), ("Hanoi", 21.0278, 105.8342),
    ("Haiphong", 20.8449, 106.6881), ("Ulaanbaatar", 47.8864, 106.9057),
    ("Osaka", 34.6937, 135.5023), ("Vientiane", 17.9757, 102.6331),
    ("Kathmandu", 27.7172, 85.3240), ("Almaty", 43.2220, 76.8512),
    ("Mandalay", 21.9588, 96.0891), ("Vladivostok", 43.1155, 131.8855),
    ("Blagoveshchensk", 50.2727, 127.5405),
    # Not shifted by Chinese map SDKs either: Hong Kong, Macau, Taiwan.
    ("Hong Kong, Central", 22.2819, 114.1582), ("Sheung Shui", 22.5016, 114.1282),
    ("Macau", 22.1987, 113.5439), ("Taipei", 25.0330, 121.5654), ("Kaohsiung", 22.6273, 120.3014),
    ("Kinmen", 24.4360, 118.3180),
]
MAINLAND = [
    ("Beijing", 39.9042, 116.4074), ("Zhenxiong", 27.4412, 104.8730),
    ("Shenzhen, Luohu", 22.5485, 114.1315), ("Zhuhai", 22.2707, 113.5767),
    ("Hengqin", 22.1200, 113.5200), ("Dandong", 40.1290, 124.3832), ("Sanya", 18.2528, 109.5119),
    ("Xiamen", 24.4798, 118.0894), ("Ruili", 24.0129, 97.8519), ("Heihe", 50.2451, 127.4902),
    ("Kashgar", 39.4704, 75.9898), ("Lhasa", 29.6525, 91.1721), ("Erenhot", 43.6529, 111.9770),
]


@pytest.mark.parametrize(("name", "lat", "lon"), ABROAD_IN_THE_RECTANGLE)
def test_no_gcj02_shift_abroad_inside_the_old_rectangle(name: str, lat: float, lon: float) -> None:
    assert prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)), name  # the old test said China
    assert not in_mainland_china(lat, lon), name
    assert to_wgs84(lat, lon, "gcj02") == (lat, lon), name
    assert from_wgs84(lat, lon, "gcj02") == (lat, lon), name


@pytest.mark.parametrize(("name", "lat", "lon"), MAINLAND)
def test_mainland_cities_get_the_shift(name: str, lat: float, lon: float) -> None:
    assert in_mainland_china(lat, lon), name
    assert 100 < haversine_m(lat, lon, *from_wgs84(lat, lon, "gcj02")) < 1000, name

