"""Reading, checking and writing grid GeoJSON (pure: no stores)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import shapely

from geo.distance import haversine_m
from grid.geojson import (
    PROBLEM_KINDS,
    WARNING_KINDS,
    CellRecord,
    ParsedGrid,
    Problem,
    StationRecord,
    cell_areas_m2,
    check_topology,
    divisions,
    load_feature_collection,
    parse_feature_collection,
    to_feature_collection,
)

LON, LAT = 104.84, 27.43  # 镇雄县, as the sample county
SIZE = 0.005  # about 440 m x 550 m


def square(lon: float = LON, lat: float = LAT, size: float = SIZE) -> list[list[float]]:
    """A closed counter-clockwise square ring, [lon, lat]."""
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size],
            [lon, lat]]


def cell(code: str = "530627001001001", ring: Any = None, station: str = "530627-WF",
         geometry: Any = "polygon", **props: Any) -> dict[str, Any]:
    if geometry == "polygon":
        geometry = {"type": "Polygon", "coordinates": [square() if ring is None else ring]}
    return {"type": "Feature", "geometry": geometry,
            "properties": {"kind": "cell", "code": code, "name": "城南社区第1网格",
                           "station_code": station, **props}}


def station(code: str = "530627-WF", geometry: Any = None, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"kind": "station", "code": code, "name": "乌峰派出所",
                           "county_code": "530627", **props}}


def fc(*features: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **extra}


def found(parsed: ParsedGrid) -> list[tuple[str | None, str]]:
    return [(p.code, p.kind) for p in parsed.problems]


def only(parsed: ParsedGrid, kind: str) -> Problem:
    hits = [p for p in parsed.problems if p.kind == kind]
    assert len(hits) == 1, parsed.problems
    return hits[0]


# --- a good file ----------------------------------------------------------------


def test_a_station_and_a_cell_are_read_with_the_hierarchy_from_the_code():
    parsed = parse_feature_collection(fc(station(duty_phone="+8613800002001"), cell()))
    assert parsed.problems == ()
    assert parsed.stations == (StationRecord("530627-WF", "乌峰派出所", "530627", "station",
                                             "+8613800002001", None, None),)
    (c,) = parsed.cells
    assert (c.code, c.station_code) == ("530627001001001", "530627-WF")
    assert (c.village_code, c.township_code, c.county_code) == (
        "530627001001", "530627001000", "530627")
    assert c.ring == tuple(tuple(p) for p in square())


def test_divisions_of_a_grid_code():
    d = divisions("530627001001003")
    assert (d.province, d.city, d.county, d.township, d.village) == (
        "530000000000", "530600000000", "530627", "530627001000", "530627001001")


def test_explicit_division_codes_that_agree_are_fine():
    parsed = parse_feature_collection(fc(station(), cell(
        county_code="530627", township_code="530627001000", village_code="530627001001")))
    assert parsed.problems == ()


def test_a_single_part_multipolygon_is_taken_as_its_polygon():
    geometry = {"type": "MultiPolygon", "coordinates": [[square()]]}
    parsed = parse_feature_collection(fc(station(), cell(geometry=geometry)))
    assert parsed.problems == ()
    assert len(parsed.cells) == 1


def test_a_county_desk_station_with_a_point():
    parsed = parse_feature_collection(fc(station(
        "530627-XJ", {"type": "Point", "coordinates": [LON, LAT, 1800.0]},
        station_kind="county_desk", county_bureau="镇雄县公安局")))
    assert parsed.problems == ()
    (s,) = parsed.stations
    assert (s.kind, s.location, s.county_bureau) == ("county_desk", (LON, LAT), "镇雄县公安局")


def test_the_accepted_crs_names_are_fine():
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    assert parse_feature_collection(fc(station(), cell(), crs=crs)).problems == ()


# --- every problem kind -----------------------------------------------------------


@pytest.mark.parametrize(("data", "words"), [
    ([], "top level"),
    ({"type": "Feature"}, "FeatureCollection"),
    ({"type": "FeatureCollection", "features": {}}, "'features' must be a list"),
])
def test_not_a_feature_collection_is_malformed(data, words):
    parsed = parse_feature_collection(data)
    assert found(parsed) == [(None, "malformed")]
    assert words in parsed.problems[0].message


@pytest.mark.parametrize(("feature", "words"), [
    ("just text", "not a GeoJSON Feature"),
    ({"type": "Feature", "geometry": None, "properties": None}, "'properties' must be"),
    ({"type": "Feature", "geometry": None, "properties": {"kind": "road"}}, "properties.kind"),
])
def test_a_feature_that_is_not_one_is_malformed(feature, words):
    parsed = parse_feature_collection(fc(feature))
    assert only(parsed, "malformed").message.startswith("feature 0: ")
    assert words in only(parsed, "malformed").message


@pytest.mark.parametrize("ring", [
    [[LON, LAT], [LON + SIZE, "27.43"], [LON + SIZE, LAT + SIZE], [LON, LAT]],
    [[LON, LAT], [LON + SIZE, True], [LON + SIZE, LAT + SIZE], [LON, LAT]],
    [[LON, LAT], [LON + SIZE], [LON + SIZE, LAT + SIZE], [LON, LAT]],
    "not a ring",
])
def test_positions_that_are_not_numbers_are_malformed(ring):
    parsed = parse_feature_collection(fc(station(), cell(ring=ring)))
    assert found(parsed) == [("530627001001001", "malformed")]
    assert parsed.cells == ()


def test_a_missing_name_or_station_code_is_malformed():
    feature = cell()
    del feature["properties"]["name"]
    feature["properties"]["station_code"] = "  "
    parsed = parse_feature_collection(fc(feature))
    messages = [p.message for p in parsed.problems if p.kind == "malformed"]
    assert len(messages) == 2
    assert "properties.name" in messages[0]
    assert "properties.station_code" in messages[1]


def test_invalid_json_text_is_malformed_with_line_and_column():
    parsed = load_feature_collection('{"type": "FeatureCollection",\n "features": [}')
    assert found(parsed) == [(None, "malformed")]
    assert "line 2 column" in parsed.problems[0].message


@pytest.mark.parametrize(("text", "words"), [
    (b"\xff\xfe{}", "UTF-8"),
    ('{"type": "FeatureCollection", "features": [NaN]}', "NaN"),
    ("[" * 100_000 + "]" * 100_000, "JSON"),
])
def test_undecodable_text_is_malformed_not_a_crash(text, words):
    parsed = load_feature_collection(text)
    assert found(parsed) == [(None, "malformed")]
    assert words in parsed.problems[0].message


def test_a_utf8_bom_is_accepted():
    text = "\ufeff" + json.dumps(fc(station(), cell()), ensure_ascii=False)
    assert load_feature_collection(text.encode("utf-8")).problems == ()
    assert load_feature_collection(text).problems == ()


@pytest.mark.parametrize("geometry", [
    None,
    {"type": "Point", "coordinates": [LON, LAT]},
    {"type": "MultiPolygon", "coordinates": [[square()], [square(LON + 0.01)]]},
])
def test_a_cell_without_one_polygon_is_not_polygon(geometry):
    parsed = parse_feature_collection(fc(station(), cell(geometry=geometry)))
    assert found(parsed) == [("530627001001001", "not_polygon")]


def test_a_polygon_with_a_hole_is_refused():
    hole = [[LON + 0.001, LAT + 0.001], [LON + 0.001, LAT + 0.002],
            [LON + 0.002, LAT + 0.002], [LON + 0.001, LAT + 0.001]]
    geometry = {"type": "Polygon", "coordinates": [square(), hole]}
    parsed = parse_feature_collection(fc(station(), cell(geometry=geometry)))
    assert found(parsed) == [("530627001001001", "has_holes")]


def test_a_self_intersecting_polygon_is_invalid_and_says_where():
    bowtie = [[LON, LAT], [LON + SIZE, LAT + SIZE], [LON + SIZE, LAT], [LON, LAT + SIZE],
              [LON, LAT]]
    parsed = parse_feature_collection(fc(station(), cell(ring=bowtie)))
    problem = only(parsed, "invalid_polygon")
    assert problem.code == "530627001001001"
    assert "Self-intersection" in problem.message
    assert parsed.cells == ()


@pytest.mark.parametrize("ring", [
    [[LON, LAT], [LON + SIZE, LAT], [LON, LAT]],  # two distinct points
    [[LON, LAT], [LON + SIZE, LAT], [LON + 2 * SIZE, LAT], [LON, LAT]],  # no area
])
def test_a_degenerate_ring_is_invalid(ring):
    parsed = parse_feature_collection(fc(station(), cell(ring=ring)))
    assert found(parsed) == [("530627001001001", "invalid_polygon")]


def test_duplicate_cell_and_station_codes_are_reported_and_the_first_kept():
    parsed = parse_feature_collection(fc(
        station(), station(), cell(), cell(ring=square(LON + 0.01))))
    assert found(parsed) == [("530627-WF", "duplicate_code"),
                             ("530627001001001", "duplicate_code")]
    assert len(parsed.stations) == 1
    assert parsed.cells[0].ring[0] == (LON, LAT)


def test_a_station_neither_in_the_file_nor_known_is_unknown():
    parsed = parse_feature_collection(fc(cell(station="530627-NT")))
    assert found(parsed) == [("530627001001001", "unknown_station")]
    assert "530627-NT" in parsed.problems[0].message
    known = parse_feature_collection(fc(cell(station="530627-NT")), known_stations={"530627-NT"})
    assert known.problems == ()


@pytest.mark.parametrize("point", [[190.0, LAT], [LON, -95.0], [math.nan, LAT],
                                   [LON, math.inf]])
def test_coordinates_out_of_range(point):
    ring = square()
    ring[2] = point
    parsed = parse_feature_collection(fc(station(), cell(ring=ring)))
    assert found(parsed) == [("530627001001001", "coordinates_out_of_range")]
    assert "position 2" in parsed.problems[0].message


def test_lat_lon_order_is_detected_in_a_ring_and_in_a_point():
    swapped = [[lat, lon] for lon, lat in square()]
    point = {"type": "Point", "coordinates": [LAT, LON]}
    parsed = parse_feature_collection(fc(station(geometry=point), cell(ring=swapped)))
    assert found(parsed) == [("530627-WF", "swapped_lat_lon"),
                             ("530627001001001", "swapped_lat_lon")]
    assert "[longitude, latitude]" in parsed.problems[1].message


def test_a_ring_outside_china_is_not_taken_for_a_swapped_one():
    # Western Europe, lon ~ 10, lat ~ 50: both parts are plausible Chinese latitudes.
    parsed = parse_feature_collection(fc(station(), cell(ring=square(10.0, 50.0))))
    assert parsed.problems == ()


def test_an_unclosed_ring_is_closed_with_a_warning():
    parsed = parse_feature_collection(fc(station(), cell(ring=square()[:-1])))
    problem = only(parsed, "unclosed_ring")
    assert not problem.blocking
    assert parsed.blocking == ()
    assert parsed.cells[0].ring == tuple(tuple(p) for p in square())


@pytest.mark.parametrize("code", ["53062700100100A", "53062700", "5306270010010011",
                                  "530600001001001", "530627000001001", "530627001000001"])
def test_bad_cell_codes(code):
    parsed = parse_feature_collection(fc(station(), cell(code)))
    assert found(parsed) == [(code, "bad_code")]
    assert parsed.cells == ()


def test_a_cell_code_that_is_not_text_is_a_bad_code():
    parsed = parse_feature_collection(fc(station(), cell(530627001001001)))  # type: ignore[arg-type]
    assert found(parsed) == [(None, "bad_code")]
    assert "530627001001001" in parsed.problems[0].message


def test_a_division_code_that_disagrees_with_the_cell_code_is_a_bad_code():
    parsed = parse_feature_collection(fc(station(), cell(county_code="530628")))
    assert found(parsed) == [("530627001001001", "bad_code")]
    assert "implies 530627" in parsed.problems[0].message


def test_a_station_with_a_bad_county_code_or_phone_or_kind():
    parsed = parse_feature_collection(fc(
        station("A", county_code="53062"),
        station("B", duty_phone="13800002001"),
        station("C", station_kind="bureau"),
        station("D", geometry={"type": "Polygon", "coordinates": [square()]}),
    ))
    assert found(parsed) == [("A", "bad_code"), ("B", "bad_phone"), ("C", "malformed"),
                             ("D", "not_point")]
    assert parsed.stations == ()


@pytest.mark.parametrize(("code", "village"), [("530627001001", "530627001001"),
                                               ("530627001", "530627001000")])
def test_short_codes_are_accepted_with_a_warning(code, village):
    parsed = parse_feature_collection(fc(station(), cell(code)))
    assert found(parsed) == [(code, "code_not_15_digits")]
    assert parsed.blocking == ()
    assert parsed.cells[0].village_code == village


def test_a_crs_other_than_wgs84_lon_lat_is_refused():
    crs = {"type": "name", "properties": {"name": "EPSG:3857"}}
    parsed = parse_feature_collection(fc(station(), cell(), crs=crs))
    assert found(parsed) == [(None, "unsupported_crs")]


def test_every_problem_is_collected_and_good_records_kept():
    bowtie = [[LON, LAT], [LON + SIZE, LAT + SIZE], [LON + SIZE, LAT], [LON, LAT + SIZE],
              [LON, LAT]]
    parsed = parse_feature_collection(fc(
        station(),
        cell("530627001001001"),
        cell("530627001001002", ring=bowtie),
        cell("530627001001003", ring=[[lat, lon] for lon, lat in square()]),
        cell("530627001001004", station="nowhere", ring=square(LON + 0.01)),
        cell("530627001001001", ring=square(LON + 0.02)),
        cell("5306270010010XX"),
        {"type": "Feature"},
    ))
    assert sorted(found(parsed), key=str) == sorted([
        ("530627001001002", "invalid_polygon"),
        ("530627001001003", "swapped_lat_lon"),
        ("530627001001004", "unknown_station"),
        ("530627001001001", "duplicate_code"),
        ("5306270010010XX", "bad_code"),
        (None, "malformed"),
    ], key=str)
    assert [c.code for c in parsed.cells] == ["530627001001001", "530627001001004"]


def test_problem_kinds_are_declared_and_warnings_do_not_block():
    assert WARNING_KINDS.issubset(PROBLEM_KINDS)
    assert Problem("1", "gap", "x").blocking is False
    assert Problem("1", "overlap", "x").blocking is True
    assert str(Problem(None, "malformed", "bad")) == "error - malformed: bad"


# --- orientation and round trip -------------------------------------------------------


def test_a_clockwise_ring_is_read_counter_clockwise():
    clockwise = square()[::-1]
    parsed = parse_feature_collection(fc(station(), cell(ring=clockwise)))
    ring = parsed.cells[0].ring
    assert shapely.is_ccw(shapely.linearrings(ring))
    assert set(ring) == {tuple(p) for p in square()}


def test_export_follows_the_right_hand_rule_and_closes_rings():
    record = CellRecord("530627001001001", "x", tuple(tuple(p) for p in square()[::-1][:-1]),
                        "530627-WF", "530627001001", "530627001000", "530627")
    out = to_feature_collection([record], [])
    (ring,) = out["features"][0]["geometry"]["coordinates"]
    assert ring[0] == ring[-1]
    assert shapely.is_ccw(shapely.linearrings(ring))
    assert len(ring) == 5


def test_export_then_read_gives_back_the_same_records():
    parsed = parse_feature_collection(fc(
        station(duty_phone="+8613800002001", county_bureau="镇雄县公安局"),
        station("530627-XJ", {"type": "Point", "coordinates": [LON, LAT]},
                station_kind="county_desk"),
        cell("530627001001001", ring=square()[::-1]),
        cell("530627001001002", ring=square(LON + SIZE), station="530627-XJ"),
        cell("530627001002", ring=square(LON + 2 * SIZE)),
    ))
    assert parsed.blocking == ()
    out = to_feature_collection(parsed.cells, parsed.stations)
    assert out["type"] == "FeatureCollection"
    text = json.dumps(out, ensure_ascii=False)
    again = load_feature_collection(text)
    assert (again.cells, again.stations) == (parsed.cells, parsed.stations)
    assert again.blocking == ()


# --- topology --------------------------------------------------------------------------


def grid_cells(n: int, skip: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
               county: str = "530627") -> list[CellRecord]:
    """An n x n block of touching squares built from shared vertex coordinates."""
    xs = [LON + i * SIZE for i in range(n + 1)]
    ys = [LAT + j * SIZE for j in range(n + 1)]
    out = []
    for i in range(n):
        for j in range(n):
            if (i, j) in skip:
                continue
            ring = ((xs[i], ys[j]), (xs[i + 1], ys[j]), (xs[i + 1], ys[j + 1]),
                    (xs[i], ys[j + 1]), (xs[i], ys[j]))
            code = f"{county}001{i + 1:03d}{j + 1:03d}"
            out.append(CellRecord(code, code, ring, "S", code[:12], code[:9] + "000", county))
    return out


def test_touching_cells_have_no_topology_problem():
    assert check_topology(grid_cells(4)) == ()


def test_an_overlap_names_both_cells():
    cells = grid_cells(2)
    shifted = tuple((x + SIZE / 2, y) for x, y in cells[0].ring)
    cells[0] = CellRecord(cells[0].code, "x", shifted, "S", cells[0].village_code,
                          cells[0].township_code, "530627")
    problems = check_topology(cells)
    overlaps = [p for p in problems if p.kind == "overlap"]
    assert [(p.code, p.related) for p in overlaps] == [("530627001001001", ("530627001002001",))]
    # Half a cell: about 0.0025 x 0.005 degrees at 27.4 N.
    expected = (SIZE / 2 * 111_195 * math.cos(math.radians(LAT))) * (SIZE * 111_195)
    area = float(overlaps[0].message.split("by about ")[1].split(" ")[0].replace(",", ""))
    assert area == pytest.approx(expected, rel=0.01)


def test_a_sliver_below_the_tolerance_is_no_overlap():
    cells = grid_cells(2)
    nudged = tuple((x + 1e-9 if x > LON else x, y) for x, y in cells[0].ring)
    cells[0] = CellRecord(cells[0].code, "x", nudged, "S", cells[0].village_code,
                          cells[0].township_code, "530627")
    assert check_topology(cells) == ()
    # It is there (about 0.06 m²): only the tolerance lets it pass.
    assert [p.kind for p in check_topology(cells, overlap_m2=0.0)] == ["overlap"]


def test_a_hole_in_a_county_is_a_gap_named_by_the_cells_around_it():
    cells = grid_cells(3, skip={(1, 1)})
    problems = check_topology(cells)
    assert [p.kind for p in problems] == ["gap"]
    gap = problems[0]
    assert not gap.blocking
    assert {gap.code, *gap.related} == {c.code for c in cells}
    assert "county 530627" in gap.message


def test_gaps_are_per_county_and_small_holes_are_ignored():
    # The same hole pattern in another county, and a 1 cm hole that does not count.
    other = grid_cells(3, skip={(1, 1)}, county="530628")
    other = [CellRecord(c.code, c.name, tuple((x + 1.0, y) for x, y in c.ring), "S",
                        c.village_code, c.township_code, c.county_code) for c in other]
    problems = check_topology(grid_cells(3) + other)
    assert [(p.kind, p.code) for p in problems] == [("gap", "530628001001001")]
    assert check_topology(grid_cells(3, skip={(1, 1)}), gap_m2=1e9) == ()


def test_invalid_stored_rings_are_reported_and_left_out():
    cells = grid_cells(2)
    bowtie = ((LON, LAT), (LON + SIZE, LAT + SIZE), (LON + SIZE, LAT), (LON, LAT + SIZE))
    broken = CellRecord("530627009009001", "x", bowtie, "S", "530627009009",
                        "530627009000", "530627")
    short = CellRecord("530627009009002", "x", ((LON, LAT),), "S", "530627009009",
                       "530627009000", "530627")
    problems = check_topology([*cells, broken, short])
    assert [(p.code, p.kind) for p in problems] == [("530627009009001", "invalid_polygon"),
                                                   ("530627009009002", "invalid_polygon")]


def test_topology_of_many_cells_stays_correct():
    # 1,600 cells through the vectorised path: still no false overlaps or gaps.
    assert check_topology(grid_cells(40)) == ()


def test_cell_areas_in_square_metres():
    (area,) = cell_areas_m2(grid_cells(1))
    width = haversine_m(LAT + SIZE / 2, LON, LAT + SIZE / 2, LON + SIZE)
    height = haversine_m(LAT, LON, LAT + SIZE, LON)
    assert area == pytest.approx(width * height, rel=0.005)
    bad = CellRecord("1", "x", ((LON, LAT),), "S", "", "", "")
    assert math.isnan(cell_areas_m2([bad])[0])
